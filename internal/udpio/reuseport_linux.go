//go:build linux

package udpio

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenReusePort opens n UDP sockets bound to the same addr with
// SO_REUSEPORT (Linux 3.9+) and wraps each with New. The kernel spreads
// arriving datagrams over the sockets by a hash of the 4-tuple, so all
// datagrams of one peer address reach the same socket; a server gives each
// socket its own receive loop and answers every peer from the socket that
// heard it. Port 0 picks one free port for all n. Only sockets of the same
// user can join the group.
func ListenReusePort(addr string, n int) ([]*Conn, error) {
	if n < 1 {
		return nil, fmt.Errorf("udpio: ListenReusePort %q: %d sockets, want at least 1", addr, n)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("setsockopt SO_REUSEPORT: %w", serr)
		}
		return nil
	}}
	conns := make([]*Conn, 0, n)
	fail := func(err error) ([]*Conn, error) {
		for _, c := range conns {
			c.Close()
		}
		return nil, err
	}
	bind := addr
	for i := 0; i < n; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", bind)
		if err != nil {
			return fail(fmt.Errorf("udpio: listen %q with SO_REUSEPORT (socket %d of %d): %w", bind, i+1, n, err))
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return fail(fmt.Errorf("udpio: listen %q: got %T, want *net.UDPConn", bind, pc))
		}
		c, err := New(uc)
		if err != nil {
			uc.Close()
			return fail(err)
		}
		conns = append(conns, c)
		if i == 0 {
			// Join the others to the port the first one got (port 0 case).
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return fail(fmt.Errorf("udpio: listen %q: %w", addr, err))
			}
			bind = net.JoinHostPort(host, strconv.Itoa(int(c.LocalAddr().Port())))
		}
	}
	return conns, nil
}
