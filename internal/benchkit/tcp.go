package benchkit

import (
	"context"
	"net"
)

// TCP is the kernel TCP stream with Nagle's algorithm off (TCP_NODELAY) on
// both ends.
type TCP struct{}

// Name returns "tcp".
func (TCP) Name() string { return "tcp" }

// Listen opens a TCP listener on addr whose conns have TCP_NODELAY set.
func (TCP) Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return noDelayListener{ln}, nil
}

// Dial opens a TCP conn to addr with TCP_NODELAY set.
func (TCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	setNoDelay(c)
	return c, nil
}

type noDelayListener struct{ net.Listener }

func (l noDelayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		setNoDelay(c)
	}
	return c, err
}
