package plugin_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// udpPath is a packet path of the application's own, as WithPacketConn
// takes: one datagram a call over a *net.UDPConn (package reliable's own
// kernel path batches with recvmmsg and sendmmsg).
type udpPath struct{ *net.UDPConn }

func openUDPPath(laddr string) (reliable.PacketConn, error) {
	ua, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	return udpPath{c}, nil
}

func (u udpPath) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	n, from, err := u.ReadFromUDPAddrPort(bufs[0])
	if err != nil {
		return 0, err
	}
	// A "udp" socket on 0.0.0.0 is dual-stack: IPv4 peers come back mapped.
	sizes[0], addrs[0] = n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return 1, nil
}

func (u udpPath) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	for i, b := range bufs {
		if _, err := u.WriteToUDPAddrPort(b, addrs[i]); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

func (u udpPath) LocalAddr() netip.AddrPort { return u.UDPConn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Example_sameRemoteWithPacketConn dials one raptor:// address, written three
// ways, over kernel UDP and over a packet path of the application's own
// (WithPacketConn): both resolve it the same way, in reliable.Dialer.
func Example_sameRemoteWithPacketConn() {
	ln, err := plugin.New().Listen("raptor://127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	kernel := plugin.New()
	defer kernel.Close()
	own := plugin.New(plugin.WithPacketConn(openUDPPath))
	defer own.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	remote := func(t *plugin.Transport, addr string) string {
		c, err := t.Dial(ctx, addr)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		return strings.TrimSuffix(c.RemoteAddr().String(), ":"+port)
	}
	for _, host := range []string{"localhost", "", "[::ffff:127.0.0.1]"} {
		addr := "raptor://" + host + ":" + port
		a, b := remote(kernel, addr), remote(own, addr)
		fmt.Printf("%-26s kernel UDP %s, WithPacketConn %s, same %v\n", strings.Replace(addr, port, "PORT", 1), a, b, a == b)
	}
	// Output:
	// raptor://localhost:PORT    kernel UDP 127.0.0.1, WithPacketConn 127.0.0.1, same true
	// raptor://:PORT             kernel UDP 127.0.0.1, WithPacketConn 127.0.0.1, same true
	// raptor://[::ffff:127.0.0.1]:PORT kernel UDP 127.0.0.1, WithPacketConn 127.0.0.1, same true
}
