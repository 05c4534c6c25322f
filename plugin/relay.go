package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raptormq/raptor/reliable"
)

// Framing tells a [Relay] how to find request boundaries, which it needs to
// drain without cutting a request in half.
type Framing int

const (
	// FramingRaw knows nothing of the protocol: while draining, a
	// connection is closed once it has been idle for DrainIdle and the last
	// bytes it carried went to the client (a response, not a request).
	FramingRaw Framing = iota
	// FramingKafka follows the 4-byte length prefixes of the Kafka protocol
	// in both directions: while draining, a connection is closed as soon as
	// every complete request forwarded has had its response and no frame is
	// half sent. A connection whose bytes are not Kafka framing (a length out
	// of range) falls back to FramingRaw. Produce requests with acks=0 get
	// no response, so such a connection waits for the drain deadline.
	FramingKafka
)

// Relay error codes. A Relay never writes into a client's byte stream: a
// client it cannot serve sees a clean connection failure in the terms of
// the transport it came in on. A Raptor client stream is reset
// ([reliable.Stream.Reset]) with one of these codes, so the client's Read
// fails with a *reliable.StreamError carrying it; a TCP client connection is
// closed with a reset (RST). A [FailoverDialer] reads these codes: draining
// opens that endpoint's breaker at once, the others count as a failure.
const (
	// CodeUpstreamUnreachable: the upstream dial failed.
	CodeUpstreamUnreachable = reliable.CodeFirstApplication + 0x10 + iota
	// CodeBusy: a stream limit (total, per source or per session) is reached.
	CodeBusy
	// CodeDraining: the relay is shutting down and takes no new streams.
	CodeDraining
	// CodeIdle: the stream sent nothing for FirstByteTimeout, or carried
	// nothing either way for IdleTimeout.
	CodeIdle
)

// RelayConfig configures a [Relay]. Zero values mean the documented defaults.
type RelayConfig struct {
	// Upstreams are the endpoint URLs that connections accepted by
	// [Relay.Serve] are forwarded to. Required for Serve (not for
	// [Relay.ServeUpstream]). With more than one, a [FailoverDialer] picks
	// one per connection.
	Upstreams []string
	// MaxStreams caps concurrent connections over all listeners; beyond it
	// a new connection is refused (see [CodeBusy]). Default 4096.
	MaxStreams int
	// MaxStreamsPerSource caps concurrent connections from one client IP
	// address, so one client cannot take the slots of others. Default 1024.
	MaxStreamsPerSource int
	// MaxStreamsPerSession caps concurrent streams of one Raptor session.
	// Default 256.
	MaxStreamsPerSession int
	// DialTimeout bounds the dial of the upstream for one connection.
	// Default 5s.
	DialTimeout time.Duration
	// FirstByteTimeout is how long a new connection may stay silent. The
	// upstream is dialed only when the client's first bytes arrive; a
	// connection that sends nothing for this long is closed (see [CodeIdle])
	// without having cost an upstream connection. Default 10s.
	FirstByteTimeout time.Duration
	// IdleTimeout closes a relayed connection that carried no byte in
	// either direction for this long (see [CodeIdle]). Default 10m (Kafka's
	// connections.max.idle.ms); negative disables it.
	IdleTimeout time.Duration
	// Framing is how request boundaries are found for drain. Default
	// FramingRaw.
	Framing Framing
	// DrainIdle is how long a raw-framed connection must be idle before a
	// drain closes it. Default 250ms.
	DrainIdle time.Duration
	// Failover configures the failover dialer over several Upstreams.
	Failover FailoverConfig
	// WrapUpstream, if set, wraps every upstream connection once it is
	// dialed: the relay writes the client's bytes to the wrapper and
	// forwards what the wrapper's Read returns. A protocol-aware relay uses
	// it to rewrite responses (package kafkarelay rewrites Kafka broker
	// addresses). The wrapper must forward Close and CloseWrite. Default
	// nil: bytes pass unchanged.
	WrapUpstream func(up net.Conn) net.Conn
	// Transport dials the upstreams. Default: a new Transport with Logger,
	// closed with the relay.
	Transport *Transport
	// Logger receives connection events. Default: the transport's logger.
	Logger *slog.Logger
}

// RelayStats are a Relay's counters.
type RelayStats struct {
	Accepted       uint64 // connections accepted
	Active         int64  // connections being served now
	Rejected       uint64 // turned away at MaxStreams
	UpstreamErrors uint64 // upstream dials that failed (client reset or closed)
	Completed      uint64 // connections that ended on their own (EOF or error)
	Drained        uint64 // closed by a drain between requests
	ForceClosed    uint64 // still busy at the drain deadline or at Close
	Refused        uint64 // arrived while draining
	BytesUp        uint64 // client to upstream
	BytesDown      uint64 // upstream to client
	SourceRejected uint64 // turned away at MaxStreamsPerSource or MaxStreamsPerSession
	IdleClosed     uint64 // closed by FirstByteTimeout or IdleTimeout
	UpstreamActive int64  // upstream connections open now
}

// ErrRelayClosed is returned by Serve after Shutdown or Close.
var ErrRelayClosed = errors.New("plugin: relay closed")

// Relay accepts connections and forwards each to an upstream: the gateway
// (Raptor in, TCP out) and the proxy (TCP in, Raptor out) are both a Relay.
// Shutdown drains it gracefully; Close stops it at once. A connection
// costs one goroutine until its first bytes arrive, two while relayed; one
// more goroutine per relay closes idle connections. All end by Close.
type Relay struct {
	cfg     RelayConfig
	t       *Transport
	ownT    bool
	single  Endpoint
	fo      *FailoverDialer
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing sync.Once
	sweep   sync.Once

	mu         sync.Mutex
	lns        map[net.Listener]struct{}
	conns      map[*relayConn]struct{}
	perSource  map[netip.Addr]int
	perSession map[*reliable.Session]int
	draining   bool
	closed     bool
	empty      chan struct{} // signalled when the last connection ends

	accepted, rejected, upErrs, completed, drained, forced, refused, bytesUp, bytesDown atomic.Uint64
	srcRejected, idleClosed                                                             atomic.Uint64
	upActive                                                                            atomic.Int64

	warnMu   sync.Mutex
	warnLast map[string]time.Time // reason -> last time it was logged
	warnSkip map[string]int       // reason -> events not logged since
}

// NewRelay checks cfg and returns a relay; call Serve to start it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 4096
	}
	if cfg.MaxStreamsPerSource <= 0 {
		cfg.MaxStreamsPerSource = 1024
	}
	if cfg.MaxStreamsPerSession <= 0 {
		cfg.MaxStreamsPerSession = 256
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.FirstByteTimeout <= 0 {
		cfg.FirstByteTimeout = 10 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 10 * time.Minute
	}
	if cfg.DrainIdle <= 0 {
		cfg.DrainIdle = 250 * time.Millisecond
	}
	if cfg.Framing != FramingRaw && cfg.Framing != FramingKafka {
		return nil, fmt.Errorf("plugin: unknown relay framing %d", cfg.Framing)
	}
	r := &Relay{cfg: cfg, lns: map[net.Listener]struct{}{}, conns: map[*relayConn]struct{}{},
		perSource: map[netip.Addr]int{}, perSession: map[*reliable.Session]int{}, empty: make(chan struct{}, 1),
		warnLast: map[string]time.Time{}, warnSkip: map[string]int{}}
	r.t = cfg.Transport
	if r.t == nil {
		var opts []Option
		if cfg.Logger != nil {
			opts = append(opts, WithLogger(cfg.Logger))
		}
		r.t, r.ownT = New(opts...), true
	}
	r.log = cfg.Logger
	if r.log == nil {
		r.log = r.t.Logger()
	}
	switch len(cfg.Upstreams) {
	case 0:
	case 1:
		ep, err := ParseEndpoint(cfg.Upstreams[0])
		if err != nil {
			r.closeTransport()
			return nil, err
		}
		r.single = ep
	default:
		fcfg := cfg.Failover
		if fcfg.Logger == nil {
			fcfg.Logger = r.log
		}
		fo, err := NewFailoverDialer(r.t, cfg.Upstreams, fcfg)
		if err != nil {
			r.closeTransport()
			return nil, err
		}
		r.fo = fo
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

func (r *Relay) closeTransport() {
	if r.ownT {
		r.t.Close()
	}
}

func (r *Relay) isDraining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

// Failover returns the failover dialer when the relay has several
// upstreams, else nil.
func (r *Relay) Failover() *FailoverDialer { return r.fo }

// Stats returns a snapshot of the counters.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	active := int64(len(r.conns))
	r.mu.Unlock()
	return RelayStats{
		Accepted: r.accepted.Load(), Active: active, Rejected: r.rejected.Load(),
		UpstreamErrors: r.upErrs.Load(), Completed: r.completed.Load(), Drained: r.drained.Load(),
		ForceClosed: r.forced.Load(), Refused: r.refused.Load(), BytesUp: r.bytesUp.Load(), BytesDown: r.bytesDown.Load(),
		SourceRejected: r.srcRejected.Load(), IdleClosed: r.idleClosed.Load(), UpstreamActive: r.upActive.Load(),
	}
}

// warn logs a failure once, then at most once a second per reason with
// the number of the same failures not logged in between, so a flood of
// failures cannot flood the log.
func (r *Relay) warn(reason, msg string, args ...any) {
	now := time.Now()
	r.warnMu.Lock()
	last, seen := r.warnLast[reason]
	if seen && now.Sub(last) < time.Second {
		r.warnSkip[reason]++
		r.warnMu.Unlock()
		return
	}
	skipped := r.warnSkip[reason]
	r.warnLast[reason], r.warnSkip[reason] = now, 0
	r.warnMu.Unlock()
	if skipped > 0 {
		args = append(args, "not_logged_since", skipped)
	}
	r.log.Warn(msg, args...)
}

// dialFunc dials the upstream of one connection; name is what to report.
type dialFunc func(ctx context.Context) (c net.Conn, name string, err error)

// Serve accepts connections on ln and relays them to the configured
// Upstreams until Shutdown or Close, when it returns ErrRelayClosed, or
// until ln fails. Several Serve calls on different listeners may run at
// once. The relay closes ln.
func (r *Relay) Serve(ln net.Listener) error {
	if r.fo == nil && r.single.Scheme == "" {
		ln.Close()
		return errors.New("plugin: relay Serve needs at least one upstream in RelayConfig.Upstreams")
	}
	return r.serve(ln, r.dialUpstream)
}

// ServeUpstream is Serve with its own upstream URL for the connections of
// ln, for example one listener per broker of a cluster. Limits and counters
// are shared with every other listener of the relay.
func (r *Relay) ServeUpstream(ln net.Listener, upstream string) error {
	ep, err := ParseEndpoint(upstream)
	if err != nil {
		ln.Close()
		return err
	}
	return r.serve(ln, func(ctx context.Context) (net.Conn, string, error) {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
		defer cancel()
		c, err := r.t.DialEndpoint(ctx, ep)
		return c, ep.String(), err
	})
}

func (r *Relay) serve(ln net.Listener, dial dialFunc) error {
	r.mu.Lock()
	if r.draining || r.closed {
		r.mu.Unlock()
		ln.Close()
		return ErrRelayClosed
	}
	r.lns[ln] = struct{}{}
	r.mu.Unlock()
	r.sweep.Do(r.startSweeper)
	defer func() {
		r.mu.Lock()
		delete(r.lns, ln)
		r.mu.Unlock()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			r.mu.Lock()
			stopping := r.draining || r.closed
			r.mu.Unlock()
			if stopping {
				return ErrRelayClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("plugin: relay accept on %s: %w", ln.Addr(), err)
		}
		r.accepted.Add(1)
		r.admit(c, dial)
	}
}

// admit starts serving c, or refuses it at once (no goroutine) when the
// relay is draining or a limit is reached.
func (r *Relay) admit(c net.Conn, dial dialFunc) {
	src := sourceAddr(c)
	var sess *reliable.Session
	if st, ok := c.(*reliable.Stream); ok {
		sess = st.Session()
	}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		c.Close()
		return
	case r.draining:
		r.mu.Unlock()
		r.refused.Add(1)
		refuse(c, CodeDraining)
		return
	case len(r.conns) >= r.cfg.MaxStreams:
		r.mu.Unlock()
		r.rejected.Add(1)
		r.warn("busy", "relay busy: connection refused", "remote", c.RemoteAddr().String(), "max_streams", r.cfg.MaxStreams)
		refuse(c, CodeBusy)
		return
	case src.IsValid() && r.perSource[src] >= r.cfg.MaxStreamsPerSource:
		r.mu.Unlock()
		r.srcRejected.Add(1)
		r.warn("source", "relay: connection refused, source at its stream limit", "source", src.String(), "max_streams_per_source", r.cfg.MaxStreamsPerSource)
		refuse(c, CodeBusy)
		return
	case sess != nil && r.perSession[sess] >= r.cfg.MaxStreamsPerSession:
		r.mu.Unlock()
		r.srcRejected.Add(1)
		r.warn("session", "relay: stream refused, session at its stream limit", "remote", c.RemoteAddr().String(), "max_streams_per_session", r.cfg.MaxStreamsPerSession)
		refuse(c, CodeBusy)
		return
	}
	rc := &relayConn{r: r, client: c, src: src, sess: sess, dial: dial}
	rc.lastTime = time.Now()
	r.conns[rc] = struct{}{}
	if src.IsValid() {
		r.perSource[src]++
	}
	if sess != nil {
		r.perSession[sess]++
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go rc.serve()
}

// sourceAddr is the client's IP address, or the zero Addr if unknown.
func sourceAddr(c net.Conn) netip.Addr {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// refuse ends a client connection the relay will not serve: a Raptor
// stream is reset with code, a TCP connection is closed with RST.
func refuse(c net.Conn, code reliable.ErrorCode) {
	switch cc := c.(type) {
	case *reliable.Stream:
		cc.Reset(code)
	case *net.TCPConn:
		cc.SetLinger(0)
	}
	c.Close()
}

func (r *Relay) remove(rc *relayConn) {
	r.mu.Lock()
	if _, ok := r.conns[rc]; !ok {
		r.mu.Unlock()
		return
	}
	delete(r.conns, rc)
	if rc.src.IsValid() {
		if r.perSource[rc.src]--; r.perSource[rc.src] <= 0 {
			delete(r.perSource, rc.src)
		}
	}
	if rc.sess != nil {
		if r.perSession[rc.sess]--; r.perSession[rc.sess] <= 0 {
			delete(r.perSession, rc.sess)
		}
	}
	if len(r.conns) == 0 {
		select {
		case r.empty <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

// startSweeper starts the goroutine that closes idle connections: one per
// relay, waking a few times per IdleTimeout.
func (r *Relay) startSweeper() {
	if r.cfg.IdleTimeout < 0 {
		return
	}
	every := min(max(r.cfg.IdleTimeout/8, 5*time.Millisecond), 5*time.Second)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-r.ctx.Done():
				return
			case now := <-tk.C:
				r.closeIdle(now)
			}
		}
	}()
}

// closeIdle closes the relayed connections idle since before now minus
// IdleTimeout.
func (r *Relay) closeIdle(now time.Time) {
	var idle []*relayConn
	r.mu.Lock()
	for rc := range r.conns {
		if rc.idleSince(now) >= r.cfg.IdleTimeout {
			idle = append(idle, rc)
		}
	}
	r.mu.Unlock()
	for _, rc := range idle {
		rc.closeWith(&r.idleClosed, CodeIdle)
	}
}

// Shutdown drains the relay: it stops taking connections, then closes each
// connection as soon as it sits between requests (see [Framing]), and
// returns nil once none is left. TCP listeners are closed at once; other
// listeners (Raptor, whose Close would end the sessions that carry the
// connections being drained) stay open until the drain ends and reset new
// streams with [CodeDraining]. When ctx ends first, the remaining
// connections are cut, counted in ForceClosed, and ctx's error is
// returned. Shutdown then releases everything as Close does.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.draining = true
	lns := make([]net.Listener, 0, len(r.lns))
	for ln := range r.lns {
		if _, tcp := ln.(*net.TCPListener); tcp {
			lns = append(lns, ln)
		}
	}
	r.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		now := time.Now()
		var quiet []*relayConn
		r.mu.Lock()
		n := len(r.conns)
		for rc := range r.conns {
			if rc.quiescent(now) {
				quiet = append(quiet, rc)
			}
		}
		r.mu.Unlock()
		for _, rc := range quiet {
			rc.closeWith(&r.drained, 0)
		}
		if n == 0 {
			break
		}
		select {
		case <-tick.C:
			continue
		case <-r.empty:
			continue
		case <-ctx.Done():
			err = ctx.Err()
		}
		break
	}
	r.Close()
	return err
}

// Close stops the relay at once: every connection and the listeners are
// closed (live ones counted in ForceClosed, Raptor streams reset with
// [CodeDraining]) and Close waits for its goroutines. It is idempotent.
// Connections go before the listeners: closing a Raptor listener ends its
// sessions, and the streams it ended would count as completed, their
// clients seeing a lost session instead of CodeDraining.
func (r *Relay) Close() error {
	r.closing.Do(func() {
		r.mu.Lock()
		r.closed = true // no connection is added from now on
		conns := make([]*relayConn, 0, len(r.conns))
		for rc := range r.conns {
			conns = append(conns, rc)
		}
		lns := make([]net.Listener, 0, len(r.lns))
		for ln := range r.lns {
			lns = append(lns, ln)
		}
		r.mu.Unlock()
		for _, rc := range conns {
			rc.closeWith(&r.forced, CodeDraining)
		}
		for _, ln := range lns {
			ln.Close()
		}
		r.cancel()
		r.wg.Wait()
		if r.fo != nil {
			r.fo.Close()
		}
		r.closeTransport()
	})
	return nil
}

func (r *Relay) dialUpstream(ctx context.Context) (net.Conn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	if r.fo != nil {
		c, err := r.fo.Dial(ctx)
		return c, strings.Join(r.cfg.Upstreams, ","), err
	}
	c, err := r.t.DialEndpoint(ctx, r.single)
	return c, r.single.String(), err
}

type direction int32

const (
	dirNone direction = iota
	dirUp             // client to upstream
	dirDown           // upstream to client
)

// relayConn is one relayed connection.
type relayConn struct {
	r      *Relay
	client net.Conn
	src    netip.Addr
	sess   *reliable.Session
	dial   dialFunc

	mu       sync.Mutex
	up       net.Conn
	done     bool // closeWith ran
	reqs     frameCounter
	resps    frameCounter
	lastDir  direction
	lastTime time.Time
	eofUp    bool // client finished sending
	eofDown  bool // upstream finished sending

	pending atomic.Int32 // copiers still running
}

// idleSince is how long the relayed connection has carried nothing; zero
// while it waits for its first bytes (FirstByteTimeout covers that).
func (rc *relayConn) idleSince(now time.Time) time.Duration {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.up == nil || rc.done {
		return 0
	}
	return now.Sub(rc.lastTime)
}

// quiescent reports whether the connection sits between requests.
func (rc *relayConn) quiescent(now time.Time) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.done {
		return false // already closing
	}
	if rc.up == nil {
		return rc.lastDir == dirNone // nothing received yet: nothing to lose
	}
	if rc.r.cfg.Framing == FramingKafka && !rc.reqs.invalid && !rc.resps.invalid {
		return !rc.reqs.partial() && !rc.resps.partial() && rc.reqs.frames == rc.resps.frames
	}
	return rc.lastDir != dirUp && now.Sub(rc.lastTime) >= rc.r.cfg.DrainIdle
}

// closeWith closes both sides once, counting into counter (if not nil);
// a nonzero code resets a Raptor client stream with it instead of closing
// it gracefully.
func (rc *relayConn) closeWith(counter *atomic.Uint64, code reliable.ErrorCode) {
	rc.mu.Lock()
	if rc.done {
		rc.mu.Unlock()
		return
	}
	rc.done = true
	up := rc.up
	rc.mu.Unlock()
	if counter != nil {
		counter.Add(1)
	}
	if code != 0 {
		refuse(rc.client, code)
	} else {
		rc.client.Close()
	}
	if up != nil {
		// Counted as gone before it goes, so that whoever sees the upstream
		// closed (its server, a test) reads UpstreamActive without it.
		rc.r.upActive.Add(-1)
		up.Close()
	}
}

func (rc *relayConn) serve() {
	r := rc.r
	defer r.wg.Done()
	// The upstream is dialed only once the client has said something. The
	// wait holds a small buffer only: silent connections are cheap.
	fp := firstPool.Get().(*[firstBufSize]byte)
	rc.client.SetReadDeadline(time.Now().Add(r.cfg.FirstByteTimeout))
	n, err := rc.client.Read(fp[:])
	rc.client.SetReadDeadline(time.Time{})
	if n == 0 {
		firstPool.Put(fp)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			rc.closeWith(&r.idleClosed, CodeIdle)
		} else {
			rc.closeWith(&r.completed, 0) // gone before saying anything
		}
		r.remove(rc)
		return
	}
	rc.mu.Lock()
	rc.lastDir = dirUp // bytes are waiting: a drain must not cut them
	rc.mu.Unlock()
	up, name, derr := rc.dial(r.ctx)
	if derr != nil {
		firstPool.Put(fp)
		if r.ctx.Err() != nil {
			rc.closeWith(nil, 0)
		} else {
			r.upErrs.Add(1)
			r.warn("upstream", "relay upstream unreachable", "upstream", name, "remote", rc.client.RemoteAddr().String(), "err", derr)
			rc.closeWith(nil, CodeUpstreamUnreachable)
		}
		r.remove(rc)
		return
	}
	r.upActive.Add(1)
	if r.cfg.WrapUpstream != nil {
		up = r.cfg.WrapUpstream(up)
	}
	rc.mu.Lock()
	if rc.done { // closed while dialing
		rc.mu.Unlock()
		firstPool.Put(fp)
		r.upActive.Add(-1)
		up.Close()
		r.remove(rc)
		return
	}
	rc.up = up
	rc.mu.Unlock()
	rc.pending.Store(2)
	r.wg.Add(1) // this goroutine holds the count above zero
	go func() {
		defer r.wg.Done()
		rc.copy(rc.client, up, dirDown)
		rc.release()
	}()
	ok := rc.forward(up, dirUp, fp[:n])
	firstPool.Put(fp)
	switch {
	case !ok:
	case err == nil:
		rc.copy(up, rc.client, dirUp)
	case errors.Is(err, io.EOF): // the first read returned bytes and EOF
		rc.finishDir(up, dirUp)
	default: // the first read returned bytes and an error
		rc.closeWith(&r.completed, 0)
	}
	rc.release()
}

// firstBufSize is the buffer of a connection's first read, held while it
// waits for its first bytes.
const firstBufSize = 2 << 10

var firstPool = sync.Pool{New: func() any { return new([firstBufSize]byte) }}

// release is called by each copier when it ends; the last one closes the
// connection and removes it from the relay.
func (rc *relayConn) release() {
	if rc.pending.Add(-1) == 0 {
		rc.closeWith(&rc.r.completed, 0)
		rc.r.remove(rc)
	}
}

// forward writes b to dst, going d, and reports whether it could.
func (rc *relayConn) forward(dst net.Conn, d direction, b []byte) bool {
	rc.mu.Lock()
	if d == dirUp {
		rc.reqs.feed(b)
	} else {
		rc.resps.feed(b)
	}
	rc.lastDir, rc.lastTime = d, time.Now()
	rc.mu.Unlock()
	if _, err := dst.Write(b); err != nil {
		if d == dirUp && peerStoppedReading(err) {
			// The upstream stopped reading; its reset or EOF, read by
			// the other copier, says why and ends the connection.
			return false
		}
		rc.closeWith(&rc.r.completed, 0)
		return false
	}
	if d == dirUp {
		rc.r.bytesUp.Add(uint64(len(b)))
	} else {
		rc.r.bytesDown.Add(uint64(len(b)))
	}
	return true
}

// copy moves bytes from src to dst until EOF (then half-closes dst) or an
// error (then closes both sides).
func (rc *relayConn) copy(dst, src net.Conn, d direction) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 && !rc.forward(dst, d, buf[:n]) {
			return
		}
		if err == nil {
			continue
		}
		if d == dirDown {
			// A relay behind us refused the stream: pass its code on (a
			// reset, or RST to a TCP client) and count it as ours.
			var se *reliable.StreamError
			if refused, _ := relayRefusal(err); refused && errors.As(err, &se) {
				rc.r.upErrs.Add(1)
				rc.r.warn("upstream", "relay upstream refused the stream", "remote", rc.client.RemoteAddr().String(), "err", err)
				rc.closeWith(nil, se.Code)
				return
			}
		}
		if errors.Is(err, io.EOF) {
			rc.finishDir(dst, d)
		} else {
			rc.closeWith(&rc.r.completed, 0)
		}
		return
	}
}

// finishDir records that direction d reached EOF: it forwards the
// half-close, and closes the connection once both directions are done.
func (rc *relayConn) finishDir(dst net.Conn, d direction) {
	cw, ok := dst.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		rc.closeWith(&rc.r.completed, 0)
		return
	}
	rc.mu.Lock()
	if d == dirUp {
		rc.eofUp = true
	} else {
		rc.eofDown = true
	}
	both := rc.eofUp && rc.eofDown
	rc.mu.Unlock()
	if both {
		rc.closeWith(&rc.r.completed, 0)
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
