package reliable

import (
	"net"
	"testing"
	"time"

	"github.com/raptormq/raptor/wire"
)

// TestStatelessRetry: an Initial without a cookie gets a Retry smaller than the
// Initial and creates no state; a forged cookie gets nothing; the real cookie
// creates a session whose Accept is also smaller than the Initial.
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
	p := wire.Params{InitialMaxData: 1 << 20, InitialMaxStreamData: 1 << 16, MaxStreams: 8, MaxDatagramSize: 1452}
	initial := wire.AppendInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: src}, nil, &p)
	if _, err := c.Write(initial); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no Retry: %v", err)
	}
	h, hl, err := wire.ParseLongHeader(buf[:n])
	if err != nil || h.Type != wire.TypeRetry {
		t.Fatalf("reply is %v (%v), want Retry", h.Type, err)
	}
	if n >= len(initial) {
		t.Fatalf("Retry of %d bytes answers an Initial of %d: amplification", n, len(initial))
	}
	if got := l.SessionCount(); got != 0 {
		t.Fatalf("listener holds %d sessions before the cookie came back", got)
	}
	token, err := wire.ParseRetry(buf[hl:n])
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), token...)
	forged[len(forged)-1] ^= 0xff
	bad := wire.AppendInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: h.SrcID, SrcID: src}, forged, &p)
	c.Write(bad)
	good := wire.AppendInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: h.SrcID, SrcID: src}, token, &p)
	c.Write(good)
	n, err = c.Read(buf)
	if err != nil {
		t.Fatalf("no Accept: %v", err)
	}
	h, _, err = wire.ParseLongHeader(buf[:n])
	if err != nil || h.Type != wire.TypeAccept {
		t.Fatalf("reply is %v (%v), want Accept (the forged cookie must get no reply)", h.Type, err)
	}
	if n >= len(good) {
		t.Fatalf("Accept of %d bytes answers an Initial of %d", n, len(good))
	}
	if st := l.Stats(); st.Counters[CounterDropsBadCookie] != 1 || l.SessionCount() != 1 {
		t.Fatalf("bad cookies %d, sessions %d; want 1 and 1", st.Counters[CounterDropsBadCookie], l.SessionCount())
	}
	// An unknown version is answered with a VersionNegotiation no larger than the Initial.
	vi := wire.AppendInitial(nil, wire.LongHeader{Version: 0xdead, DstID: dst, SrcID: src}, nil, &p)
	c.Write(vi)
	n, err = c.Read(buf)
	if err != nil {
		t.Fatalf("no VersionNegotiation: %v", err)
	}
	h, hl, err = wire.ParseLongHeader(buf[:n])
	if err != nil || h.Type != wire.TypeVersionNegotiation {
		t.Fatalf("reply is %v (%v), want VersionNegotiation", h.Type, err)
	}
	vs, err := wire.ParseVersionNegotiation(nil, buf[hl:n])
	if err != nil || len(vs) != 1 || vs[0] != wire.Version1 {
		t.Fatalf("versions %x (%v), want [%x]", vs, err, wire.Version1)
	}
}
