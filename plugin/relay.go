package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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

// The error lines a Relay writes to a client connection it cannot serve,
// before closing it. Each is one line of text ending in "\n".
//
//	RAPTOR-ERR upstream-unreachable <upstream URL>: <cause>
//	RAPTOR-ERR busy max-streams=<n>
//	RAPTOR-ERR draining
//
// A [FailoverDialer] recognises these lines at the start of a connection:
// draining opens that endpoint's breaker at once, the others count as a
// failure.
//
// A Kafka client reads the first 4 bytes as a response length that is out of
// range and drops the connection, then retries as for any broker failure.
const ErrLinePrefix = "RAPTOR-ERR "

// RelayConfig configures a [Relay]. Zero values mean the documented defaults.
type RelayConfig struct {
	// Upstreams are the endpoint URLs every accepted connection is
	// forwarded to. Required. With more than one, a [FailoverDialer] picks
	// one per connection.
	Upstreams []string
	// MaxStreams caps concurrent connections; beyond it a new connection
	// gets the busy error line and is closed. Default 4096.
	MaxStreams int
	// DialTimeout bounds the dial of the upstream for one connection.
	// Default 5s.
	DialTimeout time.Duration
	// Framing is how request boundaries are found for drain. Default
	// FramingRaw.
	Framing Framing
	// DrainIdle is how long a raw-framed connection must be idle before a
	// drain closes it. Default 250ms.
	DrainIdle time.Duration
	// Failover configures the failover dialer over several Upstreams.
	Failover FailoverConfig
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
	UpstreamErrors uint64 // upstream dials that failed (client got the error line)
	Completed      uint64 // connections that ended on their own (EOF or error)
	Drained        uint64 // closed by a drain between requests
	ForceClosed    uint64 // still busy at the drain deadline or at Close
	Refused        uint64 // arrived while draining (got the draining line)
	BytesUp        uint64 // client to upstream
	BytesDown      uint64 // upstream to client
}

// ErrRelayClosed is returned by Serve after Shutdown or Close.
var ErrRelayClosed = errors.New("plugin: relay closed")

// Relay accepts connections and forwards each to an upstream: the gateway
// (Raptor in, TCP out) and the proxy (TCP in, Raptor out) are both a Relay.
// Shutdown drains it gracefully; Close stops it at once. Each connection
// costs two goroutines, both ended by Close.
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

	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*relayConn]struct{}
	draining bool
	closed   bool
	empty    chan struct{} // signalled when the last connection ends

	accepted, rejected, upErrs, completed, drained, forced, refused, bytesUp, bytesDown atomic.Uint64
}

// NewRelay checks cfg and returns a relay; call Serve to start it.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("plugin: relay needs at least one upstream")
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 4096
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.DrainIdle <= 0 {
		cfg.DrainIdle = 250 * time.Millisecond
	}
	if cfg.Framing != FramingRaw && cfg.Framing != FramingKafka {
		return nil, fmt.Errorf("plugin: unknown relay framing %d", cfg.Framing)
	}
	r := &Relay{cfg: cfg, lns: map[net.Listener]struct{}{}, conns: map[*relayConn]struct{}{}, empty: make(chan struct{}, 1)}
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
	if len(cfg.Upstreams) == 1 {
		ep, err := ParseEndpoint(cfg.Upstreams[0])
		if err != nil {
			r.closeTransport()
			return nil, err
		}
		r.single = ep
	} else {
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
	}
}

// Serve accepts connections on ln and relays them until Shutdown or Close,
// when it returns ErrRelayClosed, or until ln fails. Several Serve calls on
// different listeners may run at once. The relay closes ln.
func (r *Relay) Serve(ln net.Listener) error {
	r.mu.Lock()
	if r.draining || r.closed {
		r.mu.Unlock()
		ln.Close()
		return ErrRelayClosed
	}
	r.lns[ln] = struct{}{}
	r.mu.Unlock()
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
		rc := &relayConn{r: r, client: c}
		rc.touch(dirNone)
		r.mu.Lock()
		switch {
		case r.closed:
			r.mu.Unlock()
			c.Close()
			continue
		case r.draining:
			r.refused.Add(1)
			r.conns[rc] = struct{}{}
			r.wg.Add(1)
			r.mu.Unlock()
			go func() {
				defer r.wg.Done()
				defer r.remove(rc)
				replyError(c, ErrLinePrefix+"draining\n")
			}()
			continue
		case len(r.conns) >= r.cfg.MaxStreams:
			r.rejected.Add(1)
			r.conns[rc] = struct{}{}
			r.wg.Add(1)
			r.mu.Unlock()
			r.log.Warn("relay busy: connection rejected", "remote", c.RemoteAddr().String(), "max_streams", r.cfg.MaxStreams)
			go func() {
				defer r.wg.Done()
				defer r.remove(rc)
				replyError(c, fmt.Sprintf("%sbusy max-streams=%d\n", ErrLinePrefix, r.cfg.MaxStreams))
			}()
			continue
		}
		r.conns[rc] = struct{}{}
		r.wg.Add(1)
		r.mu.Unlock()
		go rc.serve()
	}
}

func (r *Relay) remove(rc *relayConn) {
	r.mu.Lock()
	delete(r.conns, rc)
	if len(r.conns) == 0 {
		select {
		case r.empty <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

// Shutdown drains the relay: it stops taking connections, then closes each
// connection as soon as it sits between requests (see [Framing]), and
// returns nil once none is left. TCP listeners are closed at once; other
// listeners (Raptor, whose Close would end the sessions that carry the
// connections being drained) stay open until the drain ends and answer new
// streams meanwhile with the line "RAPTOR-ERR draining". When ctx ends first, the remaining
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
		r.mu.Lock()
		n := len(r.conns)
		for rc := range r.conns {
			if rc.quiescent(now) {
				rc.closeBoth(&r.drained)
			}
		}
		r.mu.Unlock()
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

// Close stops the relay at once: listeners and every connection are closed
// (busy ones counted in ForceClosed) and Close waits for its goroutines.
// It is idempotent.
func (r *Relay) Close() error {
	r.closing.Do(func() {
		r.mu.Lock()
		r.closed = true
		for ln := range r.lns {
			ln.Close()
		}
		for rc := range r.conns {
			rc.closeBoth(&r.forced)
		}
		r.mu.Unlock()
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

// replyError writes line to c, half-closes it, reads what the client still
// sends (so TCP does not reset the line away) for up to a second, and
// closes it.
func replyError(c net.Conn, line string) {
	deadline := time.Now().Add(time.Second)
	c.SetWriteDeadline(deadline)
	io.WriteString(c, line)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.SetReadDeadline(deadline)
		io.Copy(io.Discard, io.LimitReader(c, 1<<20))
	}
	c.Close()
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

	mu       sync.Mutex
	up       net.Conn
	done     bool // closeBoth ran
	reqs     frameCounter
	resps    frameCounter
	lastDir  direction
	lastTime time.Time
	eofUp    bool // client finished sending
	eofDown  bool // upstream finished sending

	pending atomic.Int32 // copiers still running
}

func (rc *relayConn) touch(d direction) {
	rc.mu.Lock()
	if d != dirNone {
		rc.lastDir = d
	}
	rc.lastTime = time.Now()
	rc.mu.Unlock()
}

// quiescent reports whether the connection sits between requests.
func (rc *relayConn) quiescent(now time.Time) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.up == nil || rc.done {
		return false // still dialing (bounded by DialTimeout) or already closing
	}
	if rc.r.cfg.Framing == FramingKafka && !rc.reqs.invalid && !rc.resps.invalid {
		return !rc.reqs.partial() && !rc.resps.partial() && rc.reqs.frames == rc.resps.frames
	}
	return rc.lastDir != dirUp && now.Sub(rc.lastTime) >= rc.r.cfg.DrainIdle
}

// closeBoth closes both sides once, counting into counter.
func (rc *relayConn) closeBoth(counter *atomic.Uint64) {
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
	rc.client.Close()
	if up != nil {
		up.Close()
	}
}

func (rc *relayConn) serve() {
	r := rc.r
	defer r.wg.Done()
	up, name, err := r.dialUpstream(r.ctx)
	if err != nil {
		defer r.remove(rc)
		if r.ctx.Err() != nil {
			rc.closeBoth(nil)
			return
		}
		r.upErrs.Add(1)
		r.log.Warn("relay upstream unreachable", "upstream", name, "remote", rc.client.RemoteAddr().String(), "err", err)
		replyError(rc.client, fmt.Sprintf("%supstream-unreachable %s: %v\n", ErrLinePrefix, name, oneLine(err)))
		return
	}
	rc.mu.Lock()
	if rc.done { // closed while dialing
		rc.mu.Unlock()
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
	rc.copy(up, rc.client, dirUp)
	rc.release()
}

// release is called by each copier when it ends; the last one closes the
// connection and removes it from the relay.
func (rc *relayConn) release() {
	if rc.pending.Add(-1) == 0 {
		rc.closeBoth(&rc.r.completed)
		rc.r.remove(rc)
	}
}

// copy moves bytes from src to dst until EOF (then half-closes dst) or an
// error (then closes both sides). It reports whether it ended on EOF.
func (rc *relayConn) copy(dst, src net.Conn, d direction) bool {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	counter := &rc.r.bytesUp
	if d == dirDown {
		counter = &rc.r.bytesDown
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			rc.mu.Lock()
			if d == dirUp {
				rc.reqs.feed(buf[:n])
			} else {
				rc.resps.feed(buf[:n])
			}
			rc.lastDir, rc.lastTime = d, time.Now()
			rc.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				rc.closeBoth(&rc.r.completed)
				return false
			}
			counter.Add(uint64(n))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rc.closeBoth(&rc.r.completed)
				return false
			}
			rc.finishDir(dst, d)
			return true
		}
	}
}

// finishDir records that direction d reached EOF: it forwards the
// half-close, and closes the connection once both directions are done.
func (rc *relayConn) finishDir(dst net.Conn, d direction) {
	cw, ok := dst.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		rc.closeBoth(&rc.r.completed)
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
		rc.closeBoth(&rc.r.completed)
	}
}

func oneLine(err error) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(err.Error())
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
