package reliable

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/udpio"
)

// TestDialerPacketConnHook: Dialer.PacketConn opens each session's path with
// the wildcard local address of the remote's family, and its error names
// what failed.
func TestDialerPacketConnHook(t *testing.T) {
	l := serveLoopback(t, nil, func(c net.Conn) { c.Close() })
	var got []string
	d := &Dialer{PacketConn: func(laddr string) (PacketConn, error) {
		got = append(got, laddr)
		return udpio.Listen(laddr)
	}}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ { // the second dial reuses the session
		c, err := d.DialContext(ctx, "udp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if len(got) != 1 || got[0] != "0.0.0.0:0" {
		t.Fatalf("PacketConn called with %q, want once with 0.0.0.0:0", got)
	}
	bad := &Dialer{PacketConn: func(laddr string) (PacketConn, error) { return nil, errors.New("no path") }}
	defer bad.Close()
	_, err := bad.DialContext(ctx, "udp", "[::1]:9")
	if err == nil || !strings.Contains(err.Error(), "local packet conn on [::]:0: no path") {
		t.Fatalf("dial with a failing PacketConn: %v, want the local address and the cause", err)
	}
}

// TestDialerCloseDuringHandshake: a session whose handshake completes after
// Close is closed, not leaked, and the dial fails with ErrDialerClosed.
func TestDialerCloseDuringHandshake(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	opening, release := make(chan struct{}), make(chan struct{})
	pcClosed := make(chan struct{})
	d := &Dialer{PacketConn: func(laddr string) (PacketConn, error) {
		close(opening)
		<-release
		c, err := udpio.Listen(laddr)
		if err != nil {
			return nil, err
		}
		return &closeSignal{PacketConn: c, closed: pcClosed}, nil
	}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		_, err := d.DialContext(ctx, "udp", l.Addr().String())
		res <- err
	}()
	<-opening
	d.Close()
	close(release)
	if err := <-res; !errors.Is(err, ErrDialerClosed) {
		t.Fatalf("dial racing Close: %v, want ErrDialerClosed", err)
	}
	select { // the session was closed, and its socket with it
	case <-pcClosed:
	case <-time.After(10 * time.Second):
		t.Fatal("the session dialed during Close still holds its socket after 10 s")
	}
}

// closeSignal is a PacketConn that closes closed on its first Close.
type closeSignal struct {
	PacketConn
	closed chan struct{}
	once   sync.Once
}

func (c *closeSignal) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.PacketConn.Close()
}
