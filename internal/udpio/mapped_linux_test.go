//go:build linux

package udpio

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIPv6SocketUnmapsIPv4 binds an AF_INET6 socket to ::ffff:127.0.0.1 (no
// wildcard listener needed) and exchanges datagrams with an IPv4 socket: the
// IPv6 side must report the peer as plain 127.0.0.1 and reach it by an IPv4
// destination address.
func TestIPv6SocketUnmapsIPv4(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Skipf("no AF_INET6 sockets: %v", err)
			}
			sa := &unix.SockaddrInet6{Addr: netip.MustParseAddr("::ffff:127.0.0.1").As16()}
			if err := unix.Bind(fd, sa); err != nil {
				unix.Close(fd)
				t.Skipf("cannot bind AF_INET6 socket to ::ffff:127.0.0.1: %v", err)
			}
			f := os.NewFile(uintptr(fd), "udp6-mapped")
			pc, err := net.FilePacketConn(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			c6, err := New(pc.(*net.UDPConn))
			if err != nil {
				t.Fatal(err)
			}
			defer c6.Close()
			c6.useXNet = p.xnet
			if p.nogro || p.xnet {
				if err := c6.raw.setGROMode(c6.rc, false); err != nil {
					t.Fatal(err)
				}
			}
			if !c6.v6 || !c6.LocalAddr().Addr().Is4() {
				t.Fatalf("v6=%v local=%v; want AF_INET6 socket with unmapped local address", c6.v6, c6.LocalAddr())
			}
			c4 := listenPath(t, "127.0.0.1:0", p)

			if _, err := c4.WriteBatch([][]byte{[]byte("to6")}, []netip.AddrPort{c6.LocalAddr()}); err != nil {
				t.Fatal(err)
			}
			got, from := readN(t, c6, 1, 64)
			if string(got[0]) != "to6" || from[0] != c4.LocalAddr() {
				t.Fatalf("got %q from %v, want \"to6\" from %v", got[0], from[0], c4.LocalAddr())
			}
			if _, err := c6.WriteBatch([][]byte{[]byte("to4")}, []netip.AddrPort{c4.LocalAddr()}); err != nil {
				t.Fatal(err)
			}
			got, from = readN(t, c4, 1, 64)
			if string(got[0]) != "to4" || from[0] != c6.LocalAddr() {
				t.Fatalf("got %q from %v, want \"to4\" from %v", got[0], from[0], c6.LocalAddr())
			}
		})
	}
}

// TestGSOFallback makes the kernel refuse UDP_SEGMENT messages (a socket
// with SO_NO_CHECK gets EINVAL for GSO) and checks that WriteBatch resends
// the run as single datagrams and stops trying GSO for that segment size.
func TestGSOFallback(t *testing.T) {
	tx := listen(t, "127.0.0.1:0", false)
	if !tx.Stats().GSO {
		t.Skip("kernel without UDP_SEGMENT")
	}
	rx := listen(t, "127.0.0.1:0", false)
	var serr error
	tx.rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
	if serr != nil {
		t.Skipf("SO_NO_CHECK: %v", serr)
	}
	bufs := make([][]byte, 20)
	dst := make([]netip.AddrPort, 20)
	for i := range bufs {
		bufs[i] = make([]byte, 1200)
		bufs[i][0] = byte(i)
		dst[i] = rx.LocalAddr()
	}
	for round := 0; round < 2; round++ {
		if n, err := tx.WriteBatch(bufs, dst); n != 20 || err != nil {
			t.Fatalf("round %d: WriteBatch = %d, %v", round, n, err)
		}
		got, _ := readN(t, rx, 20, 2048)
		for i, g := range got {
			if len(g) != 1200 || g[0] != byte(i) {
				t.Fatalf("round %d: datagram %d wrong", round, i)
			}
		}
	}
	st := tx.Stats()
	if st.GSOMessages != 0 || tx.raw.g.maxSeg != 1199 || st.SendErrors != 0 {
		t.Fatalf("GSOMessages=%d maxSeg=%d SendErrors=%d; want 0, 1199, 0", st.GSOMessages, tx.raw.g.maxSeg, st.SendErrors)
	}
	t.Logf("stats %+v", st)
}
