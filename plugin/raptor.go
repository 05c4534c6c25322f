package plugin

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/raptormq/raptor/reliable"
)

// PacketConnFunc opens the packet path of a raptor:// endpoint bound to laddr
// ("host:port"; port 0 picks one). Use it to run Raptor over an impaired or
// simulated packet path; the returned conn is owned by the session or listener
// built on it.
type PacketConnFunc func(laddr string) (reliable.PacketConn, error)

type raptorOptions struct {
	cfg        *reliable.Config
	packetConn PacketConnFunc
}

// WithRaptorConfig sets the session configuration for raptor:// endpoints.
// Default: nil, which package reliable reads as its documented defaults.
func WithRaptorConfig(cfg *reliable.Config) Option {
	return func(o *options) { o.raptor.cfg = cfg }
}

// WithPacketConn makes raptor:// endpoints run over packet conns from fn
// instead of kernel UDP sockets opened by package reliable. Default: nil
// (kernel UDP). Dialing then opens one packet conn per remote session.
func WithPacketConn(fn PacketConnFunc) Option {
	return func(o *options) { o.raptor.packetConn = fn }
}

type raptorTransport struct {
	o      *options
	dialer *reliable.Dialer // raptor://: kernel UDP, or the WithPacketConn path

	mu     sync.Mutex
	closed bool
	dpdk   map[string]*reliable.Dialer // raptor+dpdk://, by endpoint URL: its query configures the port
}

func newRaptorTransport(o *options) *raptorTransport {
	return &raptorTransport{
		o:      o,
		dialer: &reliable.Dialer{Config: o.raptor.cfg, PacketConn: o.raptor.packetConn},
		dpdk:   map[string]*reliable.Dialer{},
	}
}

// dial opens a stream to ep through the reliable.Dialer for its packet
// path, which keeps one session per remote.
func (rt *raptorTransport) dial(ctx context.Context, ep Endpoint) (net.Conn, error) {
	d, err := rt.dialerFor(ep)
	if err != nil {
		return nil, &DialError{Endpoint: ep.String(), Err: err}
	}
	c, err := d.DialContext(ctx, "udp", ep.Addr)
	if errors.Is(err, reliable.ErrDialerClosed) {
		err = ErrTransportClosed // Close ran during the dial
	}
	if err != nil {
		return nil, &DialError{Endpoint: ep.String(), Err: err}
	}
	return c, nil
}

// dialerFor returns the dialer of ep's packet path: the transport's own for
// raptor://, one per endpoint URL for raptor+dpdk://, whose sessions each
// open a DPDK port configured by the URL.
func (rt *raptorTransport) dialerFor(ep Endpoint) (*reliable.Dialer, error) {
	if ep.Scheme != SchemeRaptorDPDK {
		return rt.dialer, nil
	}
	if _, _, err := dpdkConfig(ep, true, rt.o); err != nil {
		return nil, err // before any lookup: the URL alone is wrong
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, ErrTransportClosed
	}
	key := ep.String()
	d := rt.dpdk[key]
	if d == nil {
		d = &reliable.Dialer{Config: rt.o.raptor.cfg, PacketConn: func(string) (reliable.PacketConn, error) {
			p, err := openDPDK(ep, true, rt.o) // the URL's local key is the local address
			if err != nil {
				return nil, err
			}
			return p, nil
		}}
		rt.dpdk[key] = d
	}
	return d, nil
}

func (rt *raptorTransport) listen(ep Endpoint) (net.Listener, error) {
	if ep.Scheme == SchemeRaptorDPDK {
		port, err := openDPDK(ep, false, rt.o)
		if err != nil {
			return nil, err
		}
		ln, err := reliable.ListenPacket(port, rt.o.raptor.cfg)
		if err != nil {
			port.Close()
			return nil, &ListenError{Endpoint: ep.String(), Err: err}
		}
		return ln, nil
	}
	if rt.o.raptor.packetConn == nil {
		ln, err := reliable.Listen(ep.Addr, rt.o.raptor.cfg)
		if err != nil {
			return nil, &ListenError{Endpoint: ep.String(), Err: err}
		}
		return ln, nil
	}
	pc, err := rt.o.raptor.packetConn(ep.Addr)
	if err != nil {
		return nil, &ListenError{Endpoint: ep.String(), Err: err}
	}
	ln, err := reliable.ListenPacket(pc, rt.o.raptor.cfg)
	if err != nil {
		pc.Close()
		return nil, &ListenError{Endpoint: ep.String(), Err: err}
	}
	return ln, nil
}

func (rt *raptorTransport) close() error {
	rt.mu.Lock()
	rt.closed = true
	ds := []*reliable.Dialer{rt.dialer}
	for _, d := range rt.dpdk {
		ds = append(ds, d)
	}
	rt.mu.Unlock()
	var errs []error
	for _, d := range ds {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// stats sums the counters of the sessions this transport dialed.
func (rt *raptorTransport) stats() reliable.Stats {
	st := rt.dialer.Stats()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, d := range rt.dpdk {
		st.Add(d.Stats())
	}
	return st
}
