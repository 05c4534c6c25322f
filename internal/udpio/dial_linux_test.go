//go:build linux

package udpio

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// families are the loopback addresses a connected Conn is tested on, with
// the socket family Dial must open for them.
var families = []struct {
	listen string
	domain int
}{
	{"127.0.0.1:0", unix.AF_INET},
	{"[::1]:0", unix.AF_INET6},
}

// dialPath connects a Conn to peer and configures it for p as listenPath
// does.
func dialPath(tb testing.TB, peer netip.AddrPort, p path) *Conn {
	tb.Helper()
	c, err := Dial(peer)
	if err != nil {
		tb.Fatalf("Dial(%v): %v", peer, err)
	}
	tb.Cleanup(func() { c.Close() })
	if p.xnet {
		c.useXNet = true
	}
	if p.nogso {
		c.raw.setGSO(false)
	}
	if p.single {
		c.raw.setSingleReads(true)
	}
	switch {
	case p.nogro || p.xnet:
		if err := c.raw.setGROMode(c.rc, false); err != nil {
			tb.Fatal(err)
		}
	case p.gro && c.raw.groAvailable():
		if err := c.raw.setGROMode(c.rc, true); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// sockInt reads an integer socket option of c.
func sockInt(tb testing.TB, c *Conn, level, opt int) int {
	tb.Helper()
	var v int
	var gerr error
	if err := c.rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		tb.Fatalf("getsockopt(%d, %d) on %v: %v %v", level, opt, c.LocalAddr(), err, gerr)
	}
	return v
}

// TestDialSocket: Dial opens a socket of the peer's family (AF_INET for
// 127.0.0.1, AF_INET6 for ::1), connected to the peer (getpeername), with
// the options every Conn has: don't-fragment (IP_PMTUDISC_PROBE on the v4
// socket, IPV6_PMTUDISC_PROBE on the v6 one), raised buffers, GSO where the
// kernel has it.
func TestDialSocket(t *testing.T) {
	for _, f := range families {
		t.Run(f.listen, func(t *testing.T) {
			srv := listenPath(t, f.listen, path{})
			c := dialPath(t, srv.LocalAddr(), path{})
			if dom := sockInt(t, c, unix.SOL_SOCKET, unix.SO_DOMAIN); dom != f.domain {
				t.Errorf("SO_DOMAIN %d, want %d", dom, f.domain)
			}
			var sa unix.Sockaddr
			var gerr error
			c.rc.Control(func(fd uintptr) { sa, gerr = unix.Getpeername(int(fd)) })
			var got netip.AddrPort
			switch a := sa.(type) {
			case *unix.SockaddrInet4:
				got = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
			case *unix.SockaddrInet6:
				got = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
			}
			if gerr != nil || got != srv.LocalAddr() {
				t.Errorf("getpeername = %v, %v; want %v", got, gerr, srv.LocalAddr())
			}
			if c.Peer() != srv.LocalAddr() {
				t.Errorf("Peer() = %v, want %v", c.Peer(), srv.LocalAddr())
			}
			if srv.Peer().IsValid() || srv.Stats().Connected {
				t.Errorf("listening Conn reports a peer %v", srv.Peer())
			}
			st := c.Stats()
			if !st.Connected || !st.DontFragment || st.RecvBuffer <= 0 || st.SendBuffer <= 0 {
				t.Errorf("Stats %+v: want Connected, DontFragment and buffer sizes", st)
			}
			level, opt, want := unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE
			if f.domain == unix.AF_INET6 {
				level, opt, want = unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE
			}
			if got := sockInt(t, c, level, opt); got != want {
				t.Errorf("MTU discover option %d, want %d (PROBE)", got, want)
			}
			if ip := c.LocalAddr().Addr(); !ip.IsLoopback() || c.LocalAddr().Port() == 0 {
				t.Errorf("LocalAddr %v, want a loopback address with a port", c.LocalAddr())
			}
		})
	}
}

// TestDialBadPeer: Dial refuses an address that names no peer.
func TestDialBadPeer(t *testing.T) {
	for _, ap := range []netip.AddrPort{{}, netip.MustParseAddrPort("127.0.0.1:0")} {
		if c, err := Dial(ap); err == nil {
			c.Close()
			t.Errorf("Dial(%v) succeeded", ap)
		}
	}
}

// TestDialExchange: on every I/O path, a connected Conn sends batches to its
// peer without a destination address (Stats.UnnamedWritten), the listener
// sees them from the Conn's local address, and the replies read on the
// connected Conn come from the peer, over IPv4 and IPv6; an IPv4-mapped form
// of the peer's address is the peer too.
func TestDialExchange(t *testing.T) {
	for _, f := range families {
		for _, p := range paths {
			t.Run(f.listen+"/"+p.name, func(t *testing.T) {
				srv := listenPath(t, f.listen, p)
				c := dialPath(t, srv.LocalAddr(), p)
				const k = 64
				out := payloads(k, 100, 3)
				dst := make([]netip.AddrPort, k)
				for i := range dst {
					dst[i] = srv.LocalAddr()
					if i%2 == 1 && srv.LocalAddr().Addr().Is4() {
						dst[i] = netip.AddrPortFrom(netip.AddrFrom16(srv.LocalAddr().Addr().As16()), srv.LocalAddr().Port())
					}
				}
				if n, err := c.WriteBatch(out, dst); n != k || err != nil {
					t.Fatalf("WriteBatch = %d, %v", n, err)
				}
				if st := c.Stats(); st.UnnamedWritten != k || st.DatagramsWritten != k {
					t.Fatalf("Stats: %d unnamed of %d written, want %d of %d", st.UnnamedWritten, st.DatagramsWritten, k, k)
				}
				got, from := readN(t, srv, k, 2048)
				for i := range got {
					if string(got[i]) != string(out[i]) || from[i] != c.LocalAddr() {
						t.Fatalf("server datagram %d from %v (%d bytes), want %d bytes from %v", i, from[i], len(got[i]), len(out[i]), c.LocalAddr())
					}
				}
				back := make([]netip.AddrPort, k)
				for i := range back {
					back[i] = c.LocalAddr()
				}
				if n, err := srv.WriteBatch(got, back); n != k || err != nil {
					t.Fatalf("server WriteBatch = %d, %v", n, err)
				}
				echo, efrom := readN(t, c, k, 2048)
				for i := range echo {
					if string(echo[i]) != string(out[i]) || efrom[i] != srv.LocalAddr() {
						t.Fatalf("reply %d from %v (%d bytes), want %d bytes from %v", i, efrom[i], len(echo[i]), len(out[i]), srv.LocalAddr())
					}
				}
			})
		}
	}
}

// TestDialNotPeer: a datagram for another address on a connected Conn is
// refused with an error wrapping ErrNotPeer that names both addresses and
// the index; the datagrams before it were sent, and the other address
// receives nothing (the marker sent to it afterwards is the first thing it
// reads).
func TestDialNotPeer(t *testing.T) {
	for _, f := range families {
		for _, p := range paths {
			t.Run(f.listen+"/"+p.name, func(t *testing.T) {
				srv := listenPath(t, f.listen, p)
				other := listenPath(t, f.listen, p)
				c := dialPath(t, srv.LocalAddr(), p)
				out := [][]byte{[]byte("one"), []byte("stray"), []byte("three")}
				dst := []netip.AddrPort{srv.LocalAddr(), other.LocalAddr(), srv.LocalAddr()}
				n, err := c.WriteBatch(out, dst)
				var oe *OpError
				if n != 1 || !errors.As(err, &oe) || !errors.Is(err, ErrNotPeer) || oe.Index != 1 {
					t.Fatalf("WriteBatch = %d, %v; want 1 and an *OpError at index 1 wrapping ErrNotPeer", n, err)
				}
				if msg := err.Error(); !strings.Contains(msg, other.LocalAddr().String()) || !strings.Contains(msg, srv.LocalAddr().String()) {
					t.Fatalf("error %q does not name both %v and %v", msg, other.LocalAddr(), srv.LocalAddr())
				}
				if got, _ := readN(t, srv, 1, 64); string(got[0]) != "one" {
					t.Fatalf("peer read %q, want %q", got[0], "one")
				}
				marker := listenPath(t, f.listen, path{})
				if n, err := marker.WriteBatch([][]byte{[]byte("marker")}, []netip.AddrPort{other.LocalAddr()}); n != 1 || err != nil {
					t.Fatalf("marker WriteBatch = %d, %v", n, err)
				}
				if got, _ := readN(t, other, 1, 64); string(got[0]) != "marker" {
					t.Fatalf("the other address read %q first, want the marker: the stray datagram was sent", got[0])
				}
			})
		}
	}
}

// closedPort binds a UDP socket on addr and closes it, returning its
// address: a port nobody listens on (unless taken again meanwhile).
func closedPort(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// TestDialRefused: a datagram to a closed port on loopback draws an ICMP
// port unreachable, which the connected Conn reports once, as an *OpError
// wrapping ECONNREFUSED: on the next ReadBatch, without a datagram (or on
// the next WriteBatch, if that comes first). The Conn stays usable and the
// next datagram draws the next report. (The kernel rate-limits ICMP
// globally, so a datagram whose report does not come within 200 ms is sent
// again.)
func TestDialRefused(t *testing.T) {
	for _, f := range families {
		for _, p := range paths {
			t.Run(f.listen+"/"+p.name, func(t *testing.T) {
				dead := closedPort(t, f.listen)
				c := dialPath(t, dead, p)
				bufs := [][]byte{make([]byte, 64)}
				sizes, addrs := make([]int, 1), make([]netip.AddrPort, 1)
				refused := func() bool {
					if _, err := c.WriteBatch([][]byte{[]byte("anyone?")}, []netip.AddrPort{dead}); err != nil {
						if !errors.Is(err, syscall.ECONNREFUSED) {
							t.Fatalf("WriteBatch: %v", err)
						}
						return true
					}
					c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					n, err := c.ReadBatch(bufs, sizes, addrs)
					if errors.Is(err, os.ErrDeadlineExceeded) {
						return false
					}
					var oe *OpError
					if n != 0 || !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNREFUSED) {
						t.Fatalf("ReadBatch = %d, %v; want 0 and an *OpError wrapping ECONNREFUSED", n, err)
					}
					return true
				}
				for round := 0; round < 2; round++ {
					attempt := 0
					for !refused() {
						if attempt++; attempt == 50 {
							t.Fatalf("round %d: no ECONNREFUSED for 50 datagrams to closed port %v", round, dead)
						}
					}
				}
			})
		}
	}
}

// TestDialGSOGRO: a connected Conn sends a run of equal-size datagrams as
// GSO messages without a name, and receives a GSO run from its peer through
// GRO, each datagram from the peer.
func TestDialGSOGRO(t *testing.T) {
	for _, f := range families {
		t.Run(f.listen, func(t *testing.T) {
			srv := listenPath(t, f.listen, path{gro: true})
			c := dialPath(t, srv.LocalAddr(), path{gro: true})
			if !c.Stats().GSO || !c.raw.groAvailable() {
				t.Skip("kernel without UDP GSO/GRO")
			}
			run := groRun()
			dst := make([]netip.AddrPort, len(run))
			for i := range dst {
				dst[i] = srv.LocalAddr()
			}
			if n, err := c.WriteBatch(run, dst); n != len(run) || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			if st := c.Stats(); st.GSOMessages == 0 || st.UnnamedWritten != uint64(len(run)) {
				t.Fatalf("Stats %+v: want GSO messages and %d unnamed datagrams", st, len(run))
			}
			got, _ := readN(t, srv, len(run), 2048)
			for i := range got {
				if string(got[i]) != string(run[i]) {
					t.Fatalf("server datagram %d differs", i)
				}
			}
			back := make([]netip.AddrPort, len(run))
			for i := range back {
				back[i] = c.LocalAddr()
			}
			if n, err := srv.WriteBatch(run, back); n != len(run) || err != nil {
				t.Fatalf("server WriteBatch = %d, %v", n, err)
			}
			echo, from := readN(t, c, len(run), 2048)
			for i := range echo {
				if string(echo[i]) != string(run[i]) || from[i] != srv.LocalAddr() {
					t.Fatalf("datagram %d from %v differs or is not from %v", i, from[i], srv.LocalAddr())
				}
			}
			if st := c.Stats(); !st.GRO || st.GROMessages == 0 {
				t.Fatalf("Stats %+v: want GRO messages on the connected Conn", st)
			}
		})
	}
}

// TestDialPending: Pending (SIOCINQ) works on a connected Conn.
func TestDialPending(t *testing.T) {
	for _, f := range families {
		t.Run(f.listen, func(t *testing.T) {
			srv := listenPath(t, f.listen, path{})
			c := dialPath(t, srv.LocalAddr(), path{})
			if c.Pending() {
				t.Fatal("Pending on a socket nothing was sent to")
			}
			if n, err := srv.WriteBatch([][]byte{[]byte("ack")}, []netip.AddrPort{c.LocalAddr()}); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !c.Pending() {
				if time.Now().After(deadline) {
					t.Fatal("Pending still false 5 s after a datagram was sent on loopback")
				}
				runtime.Gosched()
			}
			if got, _ := readN(t, c, 1, 64); string(got[0]) != "ack" {
				t.Fatalf("read %q, want %q", got[0], "ack")
			}
			if c.Pending() {
				t.Fatal("Pending after the only datagram was read")
			}
		})
	}
}

// TestDialAllocs: a connected Conn's steady-state writes and reads allocate
// nothing on the raw path.
func TestDialAllocs(t *testing.T) {
	srv := listenPath(t, "127.0.0.1:0", path{})
	c := dialPath(t, srv.LocalAddr(), path{})
	out := [][]byte{make([]byte, 64)}
	dst := []netip.AddrPort{srv.LocalAddr()}
	back := []netip.AddrPort{c.LocalAddr()}
	bufs := [][]byte{make([]byte, 1500)}
	sizes, addrs := make([]int, 1), make([]netip.AddrPort, 1)
	var err error
	a := testing.AllocsPerRun(200, func() {
		if _, e := c.WriteBatch(out, dst); e != nil {
			err = e
		}
		if _, e := srv.ReadBatch(bufs, sizes, addrs); e != nil {
			err = e
		}
		if _, e := srv.WriteBatch(out, back); e != nil {
			err = e
		}
		if _, e := c.ReadBatch(bufs, sizes, addrs); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if a != 0 {
		t.Fatalf("%.1f allocations per round trip on a connected Conn, want 0", a)
	}
}
