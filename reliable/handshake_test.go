package reliable

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/raptormq/raptor/wire"
)

// TestStatelessRetry: an Initial without a cookie gets a Retry smaller than the
// Initial and creates no state; a forged cookie gets nothing; the real cookie
// creates a session (whose handshake then waits for a ClientHello); the same
// cookie never opens a second one; a Retry names the Initial it answers.
func TestStatelessRetry(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var src, dst wire.ConnID
	src[0], dst[0] = 1, 2
	initial := testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: src}, nil)
	if _, err := c.Write(initial); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no Retry: %v", err)
	}
	h, _, err := wire.ParseLongHeader(buf[:n])
	if err != nil || h.Type != wire.TypeRetry {
		t.Fatalf("reply is %v (%v), want Retry", h.Type, err)
	}
	if n >= len(initial) {
		t.Fatalf("Retry of %d bytes answers an Initial of %d: amplification", n, len(initial))
	}
	if got := l.SessionCount(); got != 0 {
		t.Fatalf("listener holds %d sessions before the cookie came back", got)
	}
	if _, err := wire.ParseRetry(buf[:n], wire.ConnID{9}); err == nil {
		t.Fatal("Retry's integrity tag verified against another Initial's DstID")
	}
	token, err := wire.ParseRetry(buf[:n], dst)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), token...)
	forged[len(forged)-1] ^= 0xff
	c.Write(testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: h.SrcID, SrcID: src}, forged))
	// The cookie is bound to the DstID the Retry named: another one fails.
	c.Write(testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: src}, token))
	good := testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: h.SrcID, SrcID: src}, token)
	c.Write(good)
	waitFor(t, 5*time.Second, func() bool { return l.SessionCount() == 1 }, func() string {
		return fmt.Sprintf("%d sessions after the cookie came back, want 1", l.SessionCount())
	})
	if st := l.Stats(); st.Counters[CounterDropsBadCookie] != 2 {
		t.Fatalf("bad cookies %d, want 2 (forged, and for another DstID)", st.Counters[CounterDropsBadCookie])
	}
	// The same cookie from another client ID of the same socket: refused, no
	// second session (docs/PROTOCOL.md §5.2).
	var src2 wire.ConnID
	src2[0] = 3
	c.Write(testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: h.SrcID, SrcID: src2}, token))
	// An unknown version is answered with a VersionNegotiation no larger than the Initial.
	vi := testInitial(nil, wire.LongHeader{Version: 0xdead, DstID: dst, SrcID: src}, nil)
	c.Write(vi)
	for {
		n, err = c.Read(buf)
		if err != nil {
			t.Fatalf("no VersionNegotiation: %v", err)
		}
		if h, _, err = wire.ParseLongHeader(buf[:n]); err == nil && h.Type == wire.TypeVersionNegotiation {
			break
		}
	}
	if n >= len(vi) {
		t.Fatalf("VersionNegotiation of %d bytes answers an Initial of %d", n, len(vi))
	}
	vs, err := wire.ParseVersionNegotiation(nil, buf[:n], dst)
	if err != nil || len(vs) != 1 || vs[0] != wire.Version1 {
		t.Fatalf("versions %x (%v), want [%x]", vs, err, wire.Version1)
	}
	if _, err := wire.ParseVersionNegotiation(nil, buf[:n], src); err == nil {
		t.Fatal("VersionNegotiation's integrity tag verified against another Initial's DstID")
	}
	if got := l.SessionCount(); got != 1 {
		t.Fatalf("%d sessions, want 1: the cookie's second client ID opened one", got)
	}
}
