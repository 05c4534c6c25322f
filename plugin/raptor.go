package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
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
	dialer *reliable.Dialer

	mu       sync.Mutex
	closed   bool
	sessions map[string]*sessEntry // custom packet path only
}

type sessEntry struct {
	ready chan struct{}
	s     *reliable.Session
	err   error
}

func newRaptorTransport(o *options) *raptorTransport {
	return &raptorTransport{
		o:        o,
		dialer:   &reliable.Dialer{Config: o.raptor.cfg},
		sessions: map[string]*sessEntry{},
	}
}

func (rt *raptorTransport) dial(ctx context.Context, ep Endpoint) (net.Conn, error) {
	if rt.o.raptor.packetConn == nil && ep.Scheme == SchemeRaptor {
		c, err := rt.dialer.DialContext(ctx, "udp", ep.Addr)
		if err != nil {
			return nil, &DialError{Endpoint: ep.String(), Err: err}
		}
		return c, nil
	}
	for attempt := 0; ; attempt++ {
		s, err := rt.session(ctx, ep)
		if err != nil {
			return nil, &DialError{Endpoint: ep.String(), Err: err}
		}
		st, err := s.OpenStream(ctx)
		if err == nil {
			return st, nil
		}
		rt.forget(ep.String(), s)
		if attempt > 0 || ctx.Err() != nil {
			return nil, &DialError{Endpoint: ep.String(), Err: err}
		}
	}
}

// session returns the live session to ep, dialing one when there is none.
func (rt *raptorTransport) session(ctx context.Context, ep Endpoint) (*reliable.Session, error) {
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return nil, ErrTransportClosed
	}
	key := ep.String()
	e := rt.sessions[key]
	if e != nil {
		select {
		case <-e.ready:
			if e.err == nil && !sessionDone(e.s) {
				rt.mu.Unlock()
				return e.s, nil
			}
			e = nil // failed or dead: dial again
		default:
		}
	}
	owner := e == nil
	if owner {
		e = &sessEntry{ready: make(chan struct{})}
		rt.sessions[key] = e
	}
	rt.mu.Unlock()
	if !owner {
		select {
		case <-e.ready:
			return e.s, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.s, e.err = rt.dialSession(ctx, ep)
	close(e.ready)
	if e.err != nil {
		rt.forgetEntry(key, e)
		return nil, e.err
	}
	rt.mu.Lock()
	closed := rt.closed
	rt.mu.Unlock()
	if closed {
		e.s.Close()
		return nil, ErrTransportClosed
	}
	return e.s, nil
}

func (rt *raptorTransport) dialSession(ctx context.Context, ep Endpoint) (*reliable.Session, error) {
	if ep.Scheme == SchemeRaptorDPDK {
		port, raddr, err := openDPDK(ep, true, rt.o)
		if err != nil {
			return nil, err
		}
		return reliable.DialPacket(ctx, port, raddr, rt.o.raptor.cfg) // closes port on failure
	}
	raddr, err := resolve(ctx, ep.Addr)
	if err != nil {
		return nil, err
	}
	laddr := "0.0.0.0:0"
	if raddr.Addr().Is6() {
		laddr = "[::]:0"
	}
	pc, err := rt.o.raptor.packetConn(laddr)
	if err != nil {
		return nil, fmt.Errorf("open packet conn on %s: %w", laddr, err)
	}
	return reliable.DialPacket(ctx, pc, raddr, rt.o.raptor.cfg) // closes pc on failure
}

func sessionDone(s *reliable.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

func (rt *raptorTransport) forget(addr string, s *reliable.Session) {
	rt.mu.Lock()
	if e := rt.sessions[addr]; e != nil && e.s == s {
		delete(rt.sessions, addr)
	}
	rt.mu.Unlock()
	s.Close()
}

func (rt *raptorTransport) forgetEntry(addr string, e *sessEntry) {
	rt.mu.Lock()
	if rt.sessions[addr] == e {
		delete(rt.sessions, addr)
	}
	rt.mu.Unlock()
}

func (rt *raptorTransport) listen(ep Endpoint) (net.Listener, error) {
	if ep.Scheme == SchemeRaptorDPDK {
		port, _, err := openDPDK(ep, false, rt.o)
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
	var live []*reliable.Session
	for _, e := range rt.sessions {
		select {
		case <-e.ready:
			if e.err == nil {
				live = append(live, e.s)
			}
		default: // its dialer sees closed and closes it
		}
	}
	rt.sessions = map[string]*sessEntry{}
	rt.mu.Unlock()
	errs := []error{rt.dialer.Close()}
	for _, s := range live {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// resolve turns host:port into an address, looking the host up if needed.
func resolve(ctx context.Context, hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, err
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("no address for host %q", host)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(pn)), nil
}

// stats sums the counters of the sessions this transport dialed.
func (rt *raptorTransport) stats() reliable.Stats {
	st := rt.dialer.Stats()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, e := range rt.sessions {
		select {
		case <-e.ready:
			if e.s != nil {
				st.Add(e.s.Stats())
			}
		default:
		}
	}
	return st
}
