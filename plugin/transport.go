package plugin

import (
	"context"
	"errors"
	"fmt"
	"github.com/raptormq/raptor/reliable"
	"log/slog"
	"net"
	"sync"
)

// Option configures a [Transport]. Each option states its default.
type Option func(*options)

type options struct {
	logger *slog.Logger
	tcp    net.Dialer
	raptor raptorOptions // raptor.go
}

// WithLogger sets the logger for connection-level events. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithTCPDialer sets the dialer used for tcp:// endpoints. Default: a zero
// net.Dialer (the context passed to Dial bounds the dial).
func WithTCPDialer(d net.Dialer) Option { return func(o *options) { o.tcp = d } }

// ErrTransportClosed is returned by Dial and Listen after Close.
var ErrTransportClosed = errors.New("plugin: transport closed")

// Transport dials and listens by URL (see [ParseEndpoint] for the schemes).
// For raptor:// it keeps one Raptor session per remote address and opens one
// stream per Dial, so many connections to one peer share a handshake. The
// zero value is not usable; call [New]. It is safe for concurrent use.
type Transport struct {
	opts options

	mu     sync.Mutex
	closed bool
	rap    *raptorTransport // raptor.go; created on first raptor:// use
}

// New returns a Transport. Close it to end its Raptor sessions.
func New(opts ...Option) *Transport {
	t := &Transport{opts: options{logger: slog.New(slog.DiscardHandler)}}
	for _, o := range opts {
		o(&t.opts)
	}
	return t
}

// Logger returns the transport's logger.
func (t *Transport) Logger() *slog.Logger { return t.opts.logger }

// Dial connects to the endpoint URL addr, for example raptor://10.0.0.2:9092.
// The context bounds the whole dial including any Raptor handshake.
func (t *Transport) Dial(ctx context.Context, addr string) (net.Conn, error) {
	ep, err := ParseEndpoint(addr)
	if err != nil {
		return nil, err
	}
	return t.DialEndpoint(ctx, ep)
}

// DialEndpoint is Dial with a parsed endpoint.
func (t *Transport) DialEndpoint(ctx context.Context, ep Endpoint) (net.Conn, error) {
	switch ep.Scheme {
	case SchemeTCP:
		if t.isClosed() {
			return nil, ErrTransportClosed
		}
		return t.opts.tcp.DialContext(ctx, "tcp", ep.Addr)
	case SchemeRaptor, SchemeRaptorDPDK:
		rt, err := t.raptor()
		if err != nil {
			return nil, err
		}
		return rt.dial(ctx, ep)
	}
	return nil, &SchemeError{Input: ep.String(), Scheme: ep.Scheme}
}

// Listen listens on the endpoint URL addr, for example raptor://0.0.0.0:9092.
// A port of 0 picks a free port; the listener's Addr tells which.
func (t *Transport) Listen(addr string) (net.Listener, error) {
	ep, err := ParseEndpoint(addr)
	if err != nil {
		return nil, err
	}
	return t.ListenEndpoint(ep)
}

// ListenEndpoint is Listen with a parsed endpoint.
func (t *Transport) ListenEndpoint(ep Endpoint) (net.Listener, error) {
	switch ep.Scheme {
	case SchemeTCP:
		if t.isClosed() {
			return nil, ErrTransportClosed
		}
		return net.Listen("tcp", ep.Addr)
	case SchemeRaptor, SchemeRaptorDPDK:
		rt, err := t.raptor()
		if err != nil {
			return nil, err
		}
		return rt.listen(ep)
	}
	return nil, &SchemeError{Input: ep.String(), Scheme: ep.Scheme}
}

// DialContext dials "tcp" network addresses as raptor:// endpoints (and
// accepts full URLs as addr too). It has the signature franz-go's kgo.Dialer
// and gRPC's WithContextDialer (through a closure) expect.
func (t *Transport) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if _, err := ParseEndpoint(addr); err == nil {
		return t.Dial(ctx, addr)
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "":
	default:
		return nil, fmt.Errorf("plugin: cannot dial network %q over Raptor (want tcp or udp)", network)
	}
	return t.DialEndpoint(ctx, Endpoint{Scheme: SchemeRaptor, Addr: addr})
}

// Close ends every Raptor session dialed through the transport (their
// streams fail) and makes further Dial and Listen calls fail. Listeners it
// returned stay open until closed by their owner. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	rt := t.rap
	t.mu.Unlock()
	if rt != nil {
		return rt.close()
	}
	return nil
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *Transport) raptor() (*raptorTransport, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrTransportClosed
	}
	if t.rap == nil {
		t.rap = newRaptorTransport(&t.opts)
	}
	return t.rap, nil
}

// Stats sums the Raptor counters of the sessions this transport dialed
// (zero before the first raptor:// dial). Listeners report their own.
func (t *Transport) Stats() reliable.Stats {
	t.mu.Lock()
	rt := t.rap
	t.mu.Unlock()
	if rt == nil {
		return reliable.Stats{}
	}
	return rt.stats()
}
