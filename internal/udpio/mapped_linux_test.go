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
			if !c6.v6 || !c6.LocalAddr().Addr().Is4() {
				t.Fatalf("v6=%v local=%v; want AF_INET6 socket with unmapped local address", c6.v6, c6.LocalAddr())
			}
			c4 := listen(t, "127.0.0.1:0", p.xnet)

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
