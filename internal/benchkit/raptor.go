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

	once   sync.Once
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
	r.once.Do(func() { r.dialer = &reliable.Dialer{Config: r.Config} })
	return r.dialer.DialContext(ctx, "raptor", addr)
}

// Close ends the sessions this transport dialled.
func (r *Raptor) Close() error {
	if r.dialer == nil {
		return nil
	}
	return r.dialer.Close()
}
