package reliable

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/wire"
)

// Dial opens a session to the Raptor listener at addr ("host:port") over
// kernel UDP, from a new local socket that the session owns, connected to
// the server (udpio.Dial: of the server's address family, each datagram
// sent without a destination address, ICMP errors reported; see
// docs/PROTOCOL.md §5.9). A server host that answers with ICMP port
// unreachable fails the dial at once with a *net.OpError "dial" around
// ECONNREFUSED, as a TCP dial to a closed port fails. It returns when
// the server has confirmed the handshake (docs/PROTOCOL.md §5.6): three round
// trips. A handshake that resumes a session whose ticket and address token
// Config.TLS.ClientSessionCache holds returns once the client has its 1-RTT
// keys and has sent its Finished: one round trip (§5.8).
func Dial(ctx context.Context, addr string, cfg *Config) (*Session, error) {
	return dialVia(ctx, addr, cfg, nil, nil)
}

// dialVia resolves addr and dials it from a packet conn that open returns
// for the local address "0.0.0.0:0" or "[::]:0" (by the remote's family).
// open nil is a kernel UDP socket connected to the remote (udpio.Dial).
// cache, when not nil, stores session tickets if Config.TLS names no
// ClientSessionCache.
func dialVia(ctx context.Context, addr string, cfg *Config, open func(laddr string) (PacketConn, error), cache tls.ClientSessionCache) (*Session, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	raddr, err := resolve(ctx, addr)
	if err != nil {
		return nil, err
	}
	local := "0.0.0.0:0"
	if raddr.Addr().Is6() {
		local = "[::]:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("raptor: bad address %q: %w", addr, err)
	}
	var pc PacketConn
	if open == nil {
		pc, err = udpio.Dial(raddr)
		if err != nil {
			return nil, fmt.Errorf("raptor: dial %s: socket connected to %v: %w", addr, raddr, err)
		}
	} else if pc, err = open(local); err != nil {
		return nil, fmt.Errorf("raptor: dial %s: local packet conn on %s: %w", addr, local, err)
	}
	tc, err := clientTLSConfig(c, host, raddr)
	if err != nil {
		pc.Close()
		if isDialOpError(err) {
			return nil, err // as net.Dial's: it names the address
		}
		return nil, fmt.Errorf("raptor: dial %s: %w", addr, err)
	}
	if tc.ClientSessionCache == nil {
		tc.ClientSessionCache = cache
	}
	return dialPacket(ctx, pc, raddr, c, tc)
}

// DialPacket opens a session to raddr over any packet path. The session owns
// pc and closes it when it ends.
func DialPacket(ctx context.Context, pc PacketConn, raddr netip.AddrPort, cfg *Config) (*Session, error) {
	c, err := cfg.populate()
	if err != nil {
		pc.Close()
		return nil, err
	}
	tc, err := clientTLSConfig(c, raddr.Addr().String(), raddr)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("raptor: dial %s: %w", raddr, err)
	}
	return dialPacket(ctx, pc, raddr, c, tc)
}

// resolve turns addr ("host:port") into the remote of a session: an IP
// literal as it is, a name looked up with the first IPv4 address preferred,
// an empty host as 127.0.0.1 (as net.Dial takes it for the local system).
// IPv4-mapped IPv6 addresses are unmapped.
func resolve(ctx context.Context, addr string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("raptor: bad address %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("raptor: resolve %q: %w", host, err)
	}
	p, err := net.DefaultResolver.LookupPort(ctx, "udp", port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("raptor: bad port in %q: %w", addr, err)
	}
	ip := ips[0]
	for _, c := range ips { // prefer IPv4: loopback setups often lack ::1
		if c.Unmap().Is4() {
			ip = c
			break
		}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

func dialPacket(ctx context.Context, pc PacketConn, raddr netip.AddrPort, cfg *Config, tc *tls.Config) (*Session, error) {
	e := newEndpoint(pc, cfg, dialReadBatch)
	e.closeWhenIdle = true
	s := newSession(e, true, randomID(), raddr)
	now := time.Now()
	s.hsDst = randomID()
	// An address token stored with the session ticket lets the server admit
	// the Initial without a Retry (docs/PROTOCOL.md §5.8).
	s.hsToken = cachedAddrToken(tc)
	s.mu.Lock()
	err := s.startHandshakeLocked(tc, now)
	s.mu.Unlock()
	if err != nil {
		s.hs.conn.Close()
		pc.Close()
		return nil, fmt.Errorf("raptor: dial %s: TLS: %w", raddr, err)
	}
	e.sessions[s.localID] = s
	e.live.Add(1)
	e.stats.inc(CounterSessionsOpened)
	e.start()
	e.startSession(s)
	t := time.NewTimer(cfg.HandshakeTimeout)
	defer t.Stop()
	select {
	case <-s.established:
	case <-s.done:
	case <-t.C:
		s.mu.Lock()
		if s.hsErr == nil {
			s.hsErr = &HandshakeTimeoutError{Remote: raddr.String(), After: cfg.HandshakeTimeout}
		}
		s.mu.Unlock()
		s.CloseWithError(CodeNoError, "handshake timeout")
	case <-ctx.Done():
		s.CloseWithError(CodeNoError, "dial cancelled")
		<-s.done
		return nil, fmt.Errorf("raptor: dial %s: %w", raddr, ctx.Err())
	}
	s.mu.Lock()
	err = s.hsErr
	if err == nil && s.err != nil {
		err = s.err
	}
	s.mu.Unlock()
	if err != nil {
		<-s.done
		if isDialOpError(err) {
			return nil, err // as net.Dial's: it names the address
		}
		return nil, fmt.Errorf("raptor: dial %s: %w", raddr, err)
	}
	return s, nil
}

// isDialOpError reports whether err is a *net.OpError of a dial (a closed
// port: errPortUnreachable, errLocalListenerClosed), returned unwrapped as
// net.Dial returns its errors.
func isDialOpError(err error) bool {
	oe, ok := err.(*net.OpError)
	return ok && oe.Op == "dial"
}

// handleHandshakeLocked processes Retry and VersionNegotiation on a dialing
// session; pkt is the whole datagram. It returns false for a malformed or
// forged packet (its integrity tag names another Initial).
func (s *Session) handleHandshakeLocked(h wire.LongHeader, pkt []byte, now time.Time) bool {
	if s.state != stateHandshake || s.hs == nil || s.hs.gotServer {
		return true // a duplicate or late handshake packet
	}
	switch h.Type {
	case wire.TypeRetry:
		if s.hs.retried {
			return true // one Retry per handshake (RFC 9000 §17.2.5.2)
		}
		tok, err := wire.ParseRetry(pkt, s.hsDst)
		if err != nil {
			return false
		}
		// The cookie replaces an address token the server did not take.
		s.hs.retried = true
		s.hsToken = append(s.hsToken[:0], tok...)
		s.hsDst = h.SrcID
		s.hsSends = 0
		s.hsNext = now
		s.hsInterval = initialHSResend
		s.hs.sendNow = true
	case wire.TypeVersionNegotiation:
		vs, err := wire.ParseVersionNegotiation(nil, pkt, s.hsDst)
		if err != nil {
			return false
		}
		for _, v := range vs {
			if v == wire.Version1 {
				return true // lists our own version: not a real refusal (RFC 9000 §6.2)
			}
		}
		s.closeLocked(fmt.Errorf("raptor: peer %s speaks versions %x, not %x: %w", s.peer, vs, wire.Version1, &wire.UnsupportedVersionError{Version: wire.Version1}), false, now)
	}
	return true
}

// dialerTicketCacheSize is how many servers' session tickets a Dialer keeps.
const dialerTicketCacheSize = 64

// Dialer opens streams over Raptor, reusing one session per remote address.
// A session that ends is replaced by resuming it (docs/PROTOCOL.md §5.8): the
// Dialer keeps the servers' session tickets and address tokens in an LRU
// cache of its own unless Config.TLS has a ClientSessionCache.
// Its DialContext fits franz-go's kgo.Dialer and, wrapped, gRPC's
// WithContextDialer. The zero value is ready to use with default Config.
type Dialer struct {
	// Config applies to every session the dialer opens.
	Config *Config
	// PacketConn, when set, opens the packet path of each new session: it
	// gets the local address "0.0.0.0:0" or "[::]:0" (by the family of the
	// resolved remote), and the session owns and closes the conn it returns.
	// Use it to run over an impaired, simulated or DPDK path. Default nil: a
	// kernel UDP socket, as Dial opens.
	PacketConn func(laddr string) (PacketConn, error)

	mu       sync.Mutex
	tickets  tls.ClientSessionCache // when Config.TLS has no ClientSessionCache
	sessions map[string]*dialEntry
	closed   bool
	finished counters // sessions that ended and were dropped from the cache
}

// Stats sums the counters of the dialer's sessions, live and ended.
func (d *Dialer) Stats() Stats {
	var st Stats
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finished.addTo(&st)
	for _, e := range d.sessions {
		select {
		case <-e.ready:
			if e.s != nil {
				e.s.ep.snapshotInto(&st)
			}
		default:
		}
	}
	return st
}

type dialEntry struct {
	ready chan struct{}
	s     *Session
	err   error
}

// ErrDialerClosed is returned by DialContext after Close.
var ErrDialerClosed = fmt.Errorf("raptor: dialer closed: %w", net.ErrClosed)

// DialContext opens a new stream to addr. network is ignored ("udp",
// "raptor" and "tcp" are all accepted, since callers written for TCP pass
// "tcp"). A dead session is replaced once per call.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		s, err := d.session(ctx, addr)
		if err != nil {
			return nil, err
		}
		st, err := s.OpenStream(ctx)
		if err == nil {
			return st, nil
		}
		d.forget(addr, s)
		if attempt > 0 || ctx.Err() != nil {
			return nil, err
		}
	}
}

func (d *Dialer) session(ctx context.Context, addr string) (*Session, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, ErrDialerClosed
	}
	if d.sessions == nil {
		d.sessions = make(map[string]*dialEntry)
	}
	if e := d.sessions[addr]; e != nil {
		d.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil {
			select {
			case <-e.s.Done():
				d.forget(addr, e.s)
				return d.session(ctx, addr)
			default:
				return e.s, nil
			}
		}
		d.forget(addr, nil)
		return nil, e.err
	}
	if d.tickets == nil {
		d.tickets = tls.NewLRUClientSessionCache(dialerTicketCacheSize)
	}
	e := &dialEntry{ready: make(chan struct{})}
	d.sessions[addr] = e
	cache := d.tickets
	d.mu.Unlock()
	e.s, e.err = dialVia(ctx, addr, d.Config, d.PacketConn, cache)
	close(e.ready)
	if e.err != nil {
		d.forget(addr, nil)
		return nil, e.err
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed { // Close ran during the handshake and did not see this session
		e.s.Close()
		return nil, ErrDialerClosed
	}
	return e.s, nil
}

// forget drops a failed or dead session from the cache.
func (d *Dialer) forget(addr string, s *Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e := d.sessions[addr]; e != nil && (s == nil || e.s == s) {
		select {
		case <-e.ready:
			if e.s != nil {
				var st Stats
				e.s.ep.snapshotInto(&st)
				d.finished.addStats(&st)
			}
			delete(d.sessions, addr)
		default:
		}
	}
}

// Close closes every session the dialer opened (gracefully). Later dials fail.
func (d *Dialer) Close() error {
	d.mu.Lock()
	d.closed = true
	var list []*Session
	for _, e := range d.sessions {
		select {
		case <-e.ready:
			if e.s != nil {
				list = append(list, e.s)
			}
		default:
		}
	}
	d.sessions = nil
	d.mu.Unlock()
	var errs []error
	for _, s := range list {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
