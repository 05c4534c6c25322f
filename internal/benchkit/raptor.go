package benchkit

import (
	"context"
	"net"
	"sync"

	"github.com/raptormq/raptor/reliable"
)

func init() { builtin = append(builtin, &Raptor{}) }

// Raptor is the Raptor transport (package reliable) over kernel UDP with its
// default Config: one session per remote address, one stream per Dial.
type Raptor struct {
	// Config applies to both the listener and the dialer; nil means defaults.
	Config *reliable.Config

	mu     sync.Mutex
	dialer *reliable.Dialer
}

// Name returns "raptor".
func (*Raptor) Name() string { return "raptor" }

// Listen opens a Raptor listener on addr; Accept returns peer-opened streams.
func (r *Raptor) Listen(ctx context.Context, addr string) (net.Listener, error) {
	return reliable.Listen(addr, r.Config)
}

// Dial opens a stream to the Raptor listener at addr, over the session to
// addr that this transport already has, or a new one.
func (r *Raptor) Dial(ctx context.Context, addr string) (net.Conn, error) {
	r.mu.Lock()
	if r.dialer == nil {
		r.dialer = &reliable.Dialer{Config: r.Config}
	}
	d := r.dialer
	r.mu.Unlock()
	return d.DialContext(ctx, "raptor", addr)
}

// Close ends the sessions this transport dialled; a later Dial starts a new
// dialer, so that each run has sessions of its own.
func (r *Raptor) Close() error {
	r.mu.Lock()
	d := r.dialer
	r.dialer = nil
	r.mu.Unlock()
	if d == nil {
		return nil
	}
	return d.Close()
}

// Fresh returns a Raptor transport with the same Config and a dialer of its
// own, so that its conns ride a session of their own.
func (r *Raptor) Fresh() Transport { return &Raptor{Config: r.Config} }
