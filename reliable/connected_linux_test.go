//go:build linux

package reliable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/wire"
)

// loopbacks are the addresses the connected-socket tests listen on.
var loopbacks = []string{"127.0.0.1:0", "[::1]:0"}

// listenOrSkip opens a listener on addr, skipping the test where the
// address family is not usable (no ::1).
func listenOrSkip(t *testing.T, addr string, cfg *Config) *Listener {
	t.Helper()
	l, err := Listen(addr, cfg)
	if err != nil {
		if addr[0] == '[' {
			t.Skipf("IPv6 loopback not usable here: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// echoOn writes msg on st and reads it back from an echoing peer.
func echoOn(t *testing.T, s *Session, st *Stream, msg string) {
	t.Helper()
	if _, err := st.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v (session: %v)", msg, err, s.Err())
	}
	readBack(t, s, st, msg)
}

func readBack(t *testing.T, s *Session, st *Stream, msg string) {
	t.Helper()
	st.SetReadDeadline(time.Now().Add(30 * time.Second))
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(st, back); err != nil || string(back) != msg {
		t.Fatalf("echo of %q: %q, %v (session: %v)", msg, back, err, s.Err())
	}
}

// sessionConn is the *udpio.Conn under a session.
func sessionConn(t *testing.T, s *Session) *udpio.Conn {
	t.Helper()
	c, ok := s.ep.pc.(*udpio.Conn)
	if !ok {
		t.Fatalf("session socket is %T, want *udpio.Conn", s.ep.pc)
	}
	return c
}

// TestDialConnectedSocket: Dial's session (and a Dialer's without a
// PacketConn) runs over a socket connected to the server, of its address
// family, over IPv4 and IPv6, and every datagram it sends leaves without a
// destination address (udpio's UnnamedWritten counts all of them); the
// listener's socket, a DialPacket caller's and a Dialer.PacketConn's stay
// unconnected.
func TestDialConnectedSocket(t *testing.T) {
	for _, addr := range loopbacks {
		t.Run(addr, func(t *testing.T) {
			l := listenOrSkip(t, addr, nil)
			go echoServer(l, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Dial(ctx, l.Addr().String(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st, err := s.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 20; i++ {
				echoOn(t, s, st, fmt.Sprintf("ping %d", i))
			}
			c := sessionConn(t, s)
			lap := l.e.pc.LocalAddr()
			if c.Peer() != lap || !s.ep.connected {
				t.Fatalf("session socket connected to %v (endpoint connected %v), want %v", c.Peer(), s.ep.connected, lap)
			}
			if c.LocalAddr().Addr().Is4() != lap.Addr().Is4() {
				t.Fatalf("session socket %v is not of the family of %v", c.LocalAddr(), lap)
			}
			cs := c.Stats()
			if !cs.Connected || cs.DatagramsWritten == 0 || cs.UnnamedWritten != cs.DatagramsWritten {
				t.Fatalf("session socket: %d of %d datagrams sent without a name (Connected %v), want all", cs.UnnamedWritten, cs.DatagramsWritten, cs.Connected)
			}
			if ls := l.e.pc.(*udpio.Conn).Stats(); ls.Connected || ls.UnnamedWritten != 0 || l.e.connected {
				t.Fatalf("listener socket connected (%+v)", ls)
			}

			d := &Dialer{}
			defer d.Close()
			dc, err := d.DialContext(ctx, "tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			dc.Close()
			if ds := d.sessions[l.Addr().String()].s; !sessionConn(t, ds).Stats().Connected {
				t.Fatal("Dialer session without PacketConn: socket not connected")
			}
			shared := &Dialer{PacketConn: func(laddr string) (PacketConn, error) { return udpio.Listen(laddr) }}
			defer shared.Close()
			sc, err := shared.DialContext(ctx, "tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			sc.Close()
			if ss := shared.sessions[l.Addr().String()].s; sessionConn(t, ss).Stats().Connected || ss.ep.connected {
				t.Fatal("Dialer.PacketConn's socket was connected")
			}
		})
	}
}

// closedUDPPort binds a UDP socket on addr and closes it: a port nobody
// listens on (unless taken again meanwhile).
func closedUDPPort(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		if addr[0] == '[' {
			t.Skipf("IPv6 loopback not usable here: %v", err)
		}
		t.Fatal(err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// TestDialClosedPort: a dial to a port nobody listens on fails as soon as
// the host's ICMP port unreachable comes back, long before the handshake
// timeout (a minute here: a test that had to wait for it would run out of
// its context first and fail), with a *net.OpError "dial" naming the
// address around ECONNREFUSED, as net.Dial("tcp") fails; through Dial and
// through a Dialer (franz-go's path) alike.
func TestDialClosedPort(t *testing.T) {
	for _, addr := range loopbacks {
		for _, via := range []string{"Dial", "Dialer"} {
			t.Run(addr+"/"+via, func(t *testing.T) {
				dead := closedUDPPort(t, addr)
				cfg := &Config{HandshakeTimeout: time.Minute, PinnedSHA256: make([]byte, 32)}
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
				defer cancel()
				var err error
				if via == "Dial" {
					var s *Session
					if s, err = Dial(ctx, dead.String(), cfg); err == nil {
						s.Close()
					}
				} else {
					d := &Dialer{Config: cfg}
					defer d.Close()
					var c net.Conn
					if c, err = d.DialContext(ctx, "tcp", dead.String()); err == nil {
						c.Close()
					}
				}
				oe, ok := err.(*net.OpError)
				if !ok || oe.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) || oe.Addr == nil || oe.Addr.String() != dead.String() {
					t.Fatalf("dial of closed port %v: %T %v; want a *net.OpError \"dial\" at that address around ECONNREFUSED", dead, err, err)
				}
				var hte *HandshakeTimeoutError
				if errors.As(err, &hte) || ctx.Err() != nil {
					t.Fatalf("dial of closed port %v waited for a timeout: %v", dead, err)
				}
			})
		}
	}
}

// relay forwards datagrams between a client and a listener through two
// sockets of its own: front, which the client dials, and back, from which
// it talks to the listener. Closing front makes the client's datagrams draw
// ICMP port unreachable; opening it again at the same port restores the path.
type relay struct {
	t      *testing.T
	target netip.AddrPort
	addr   netip.AddrPort // front's address
	back   *net.UDPConn

	mu     sync.Mutex
	front  *net.UDPConn
	client netip.AddrPort
	wg     sync.WaitGroup
}

func newRelay(t *testing.T, target netip.AddrPort) *relay {
	t.Helper()
	host := "127.0.0.1:0"
	if target.Addr().Is6() {
		host = "[::1]:0"
	}
	ua, _ := net.ResolveUDPAddr("udp", host)
	back, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.ListenUDP("udp", ua)
	if err != nil {
		back.Close()
		t.Fatal(err)
	}
	fa := front.LocalAddr().(*net.UDPAddr).AddrPort()
	r := &relay{t: t, target: target, back: back, front: front, addr: netip.AddrPortFrom(fa.Addr().Unmap(), fa.Port())}
	r.wg.Add(2)
	go r.forward(front)
	go r.backward()
	t.Cleanup(func() {
		r.closeFront()
		back.Close()
		r.wg.Wait()
	})
	return r
}

// forward copies the client's datagrams from front to the listener.
func (r *relay) forward(front *net.UDPConn) {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.client = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		r.mu.Unlock()
		r.back.WriteToUDPAddrPort(buf[:n], r.target)
	}
}

// backward copies the listener's datagrams to the client through the
// current front socket (dropped while it is closed).
func (r *relay) backward() {
	defer r.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, _, err := r.back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		front, to := r.front, r.client
		r.mu.Unlock()
		if front != nil && to.IsValid() {
			front.WriteToUDPAddrPort(buf[:n], to)
		}
	}
}

func (r *relay) closeFront() {
	r.mu.Lock()
	f := r.front
	r.front = nil
	r.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// reopenFront binds front again at its old address; false if the port was
// taken meanwhile.
func (r *relay) reopenFront() bool {
	front, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(r.addr))
	if err != nil {
		r.t.Logf("relay: port %v taken meanwhile: %v", r.addr, err)
		return false
	}
	r.mu.Lock()
	r.front = front
	r.mu.Unlock()
	r.wg.Add(1)
	go r.forward(front)
	return true
}

// TestICMPAfterEstablished: once a dialed session is established, neither
// a datagram from a third socket to its connected socket (the kernel does
// not deliver it: neither the address-mismatch nor the unknown-session
// drop counter moves) nor the ICMP port unreachable
// errors its datagrams draw while the server's port is gone end the session
// or its receive loop: they are counted (CounterICMPErrors), and when the
// port is back the data written meanwhile arrives and the session goes on.
func TestICMPAfterEstablished(t *testing.T) {
	for _, addr := range loopbacks {
		t.Run(addr, func(t *testing.T) {
			l := listenOrSkip(t, addr, nil)
			go echoServer(l, nil)
			r := newRelay(t, l.e.pc.LocalAddr())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s, err := Dial(ctx, r.addr.String(), pin(l, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st, err := s.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			echoOn(t, s, st, "before")
			c := sessionConn(t, s)
			if c.Peer() != r.addr {
				t.Fatalf("session socket connected to %v, want the relay at %v", c.Peer(), r.addr)
			}

			drops := func() uint64 {
				st := s.ep.snapshot()
				return st.Counters[CounterDropsUnknownSession] + st.Counters[CounterDropsAddressMismatch]
			}
			before := drops()
			stray, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.LocalAddr().Addr(), 0)))
			if err != nil {
				t.Fatal(err)
			}
			// A packet for the session's connection ID: delivered, it would
			// be dropped as from the wrong address.
			forged := forgeShort(t, s.localID, 1<<40, &wire.PingFrame{})
			for i := 0; i < 10; i++ {
				if _, err := stray.WriteToUDPAddrPort(forged, c.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			stray.Close()
			echoOn(t, s, st, "after strays") // read after them had they been queued
			if d := drops() - before; d != 0 {
				t.Fatalf("%d stray datagrams reached the connected socket's session", d)
			}

			r.closeFront()
			if _, err := st.Write([]byte("during")); err != nil {
				t.Fatalf("write while the port is closed: %v", err)
			}
			waitFor(t, 30*time.Second, func() bool { return s.Stats().Counters[CounterICMPErrors] > 0 || s.Err() != nil },
				func() string { return "no ICMP error counted while the server's port was closed" })
			if err := s.Err(); err != nil {
				t.Fatalf("session ended by ICMP errors: %v", err)
			}
			if !r.reopenFront() {
				t.Skip("relay port taken meanwhile")
			}
			readBack(t, s, st, "during")
			echoOn(t, s, st, "after")
			if err := s.Err(); err != nil {
				t.Fatalf("session: %v", err)
			}
			t.Logf("ICMP errors counted: %d", s.Stats().Counters[CounterICMPErrors])
		})
	}
}

// failingConn is a PacketConn whose reads fail at once, every time, with
// an error that is not an ICMP report, recording when they were made.
type failingConn struct {
	mu     sync.Mutex
	reads  []time.Time
	enough chan struct{} // closed after wantReads reads
	closed chan struct{}
	once   sync.Once
}

const wantReads = 8

func (f *failingConn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	select {
	case <-f.closed:
		return 0, net.ErrClosed
	default:
	}
	f.mu.Lock()
	f.reads = append(f.reads, time.Now())
	if len(f.reads) == wantReads {
		close(f.enough)
	}
	f.mu.Unlock()
	return 0, &net.OpError{Op: "read", Net: "udp", Err: syscall.ENOBUFS}
}

func (f *failingConn) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	return len(bufs), nil
}
func (f *failingConn) LocalAddr() netip.AddrPort       { return netip.MustParseAddrPort("127.0.0.1:9") }
func (f *failingConn) Close() error                    { f.once.Do(func() { close(f.closed) }); return nil }
func (f *failingConn) SetReadDeadline(time.Time) error { return nil }
func (f *failingConn) Peer() netip.AddrPort            { return netip.MustParseAddrPort("127.0.0.1:10") }

// TestReadLoopBacksOff: on a socket whose every read fails (not closed, not
// an ICMP report), the receive loop retries failRetries times at once and
// then waits failBackoff before each further read, so a persistent error
// does not spin a core; Close still ends the loop at once.
func TestReadLoopBacksOff(t *testing.T) {
	cfg, err := (&Config{}).populate()
	if err != nil {
		t.Fatal(err)
	}
	f := &failingConn{enough: make(chan struct{}), closed: make(chan struct{})}
	e := newEndpoint(f, cfg, dialReadBatch)
	e.start()
	select {
	case <-f.enough:
	case <-time.After(30 * time.Second):
		t.Fatal("fewer than 8 reads in 30 s")
	}
	f.Close()
	e.lead.closing()
	select {
	case <-e.readDone:
	case <-time.After(30 * time.Second):
		t.Fatal("receive loop did not end after Close")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := failRetries + 1; i < wantReads; i++ {
		// A timer never fires early: each read after the first failRetries+1
		// comes at least failBackoff after the one before.
		if gap := f.reads[i].Sub(f.reads[i-1]); gap < failBackoff {
			t.Fatalf("read %d came %v after read %d, want at least the back-off %v", i, gap, i-1, failBackoff)
		}
	}
}

// TestIsICMPReport: the errnos Linux reports ICMP errors with are ICMP
// reports however wrapped (udpio wraps them twice); other errors are not.
func TestIsICMPReport(t *testing.T) {
	wrap := func(e error) error {
		return &udpio.OpError{Op: "read", Index: -1, Err: &net.OpError{Op: "read", Err: e}}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{wrap(syscall.ECONNREFUSED), true},
		{wrap(syscall.EHOSTUNREACH), true},
		{wrap(syscall.ENETUNREACH), true},
		{wrap(syscall.EMSGSIZE), true},
		{wrap(syscall.ENONET), true},
		{wrap(syscall.EPROTO), true},
		{wrap(syscall.ENOBUFS), false},
		{wrap(syscall.EBADF), false},
		{wrap(net.ErrClosed), false},
		{errors.New("broken"), false},
	} {
		if got := isICMPReport(tc.err); got != tc.want {
			t.Errorf("isICMPReport(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
