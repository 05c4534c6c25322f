//go:build !linux

package udpio

import (
	"errors"
	"fmt"
)

// ListenReusePort opens one socket (n = 1) with Listen; several sockets on one
// port with kernel load balancing (SO_REUSEPORT) need Linux.
func ListenReusePort(addr string, n int) ([]*Conn, error) {
	if n != 1 {
		return nil, fmt.Errorf("udpio: ListenReusePort %q with %d sockets: %w", addr, n, errors.ErrUnsupported)
	}
	c, err := Listen(addr)
	if err != nil {
		return nil, err
	}
	return []*Conn{c}, nil
}
