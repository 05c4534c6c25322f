package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/raptormq/raptor/reliable"
)

// FailoverConfig configures a [FailoverDialer]. Zero values mean the
// documented defaults.
type FailoverConfig struct {
	// FailureThreshold is how many consecutive failures (failed dials, or
	// connections that died with an error other than EOF) open an
	// endpoint's breaker. Default 3.
	FailureThreshold uint32
	// OpenTimeout is how long an open breaker skips its endpoint before one
	// half-open probe dial may try it again. Default 5s.
	OpenTimeout time.Duration
	// DialTimeout bounds each attempt on one endpoint (within the caller's
	// context). Default 2s.
	DialTimeout time.Duration
	// OnStateChange, if set, is called when an endpoint's breaker changes
	// state (closed, open, half-open).
	OnStateChange func(endpoint string, from, to gobreaker.State)
	// Logger receives breaker state changes. Default: the transport's logger.
	Logger *slog.Logger
}

func (c *FailoverConfig) populate(t *Transport) {
	if c.FailureThreshold == 0 {
		c.FailureThreshold = 3
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 5 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = t.Logger()
	}
}

// FailoverDialer dials one of several equivalent endpoints (for example two
// gateways in front of one broker). Each endpoint has its own
// github.com/sony/gobreaker/v2 circuit breaker: an endpoint that keeps
// failing is skipped until, after OpenTimeout, a half-open probe dial
// succeeds. New connections go to the healthy endpoint with the fewest live
// connections, so sessions spread across the healthy endpoints. A failed
// attempt moves on to the next endpoint within the same Dial.
//
// A Raptor peer that ends our session (a gateway shutting down or killed
// with its listener closed), a session that dies of idle timeout, and a
// stream a [Relay] resets with [CodeDraining] open
// the endpoint's breaker at once: the endpoint said it is leaving, so no
// dial is wasted on it. A stream the relay resets with [CodeUpstreamUnreachable]
// or [CodeBusy] (the gateway cannot reach its upstream, or is full) counts as a failure. Close
// the dialer to end the goroutine that watches each session.
type FailoverDialer struct {
	t    *Transport
	cfg  FailoverConfig
	eps  []*failoverEndpoint
	next atomic.Uint64

	mu      sync.Mutex
	closed  bool
	done    chan struct{}
	watched map[*reliable.Session]bool
	wg      sync.WaitGroup
}

type failoverEndpoint struct {
	ep       Endpoint
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	active   atomic.Int64
	dials    atomic.Uint64
	failures atomic.Uint64
	opened   atomic.Int64 // unix nanos of the last transition to open
}

// errCallerGone marks an attempt abandoned because the caller's context
// ended; it does not count against the endpoint.
var errCallerGone = errors.New("caller context done")

// errStreamFailed is what a connection that died with an error reports.
var errStreamFailed = errors.New("connection failed")

// NewFailoverDialer returns a dialer over the endpoint URLs, which must be
// at least one and distinct. Connections are made through t.
func NewFailoverDialer(t *Transport, endpoints []string, cfg FailoverConfig) (*FailoverDialer, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("plugin: failover dialer needs at least one endpoint")
	}
	cfg.populate(t)
	f := &FailoverDialer{t: t, cfg: cfg, done: make(chan struct{}), watched: map[*reliable.Session]bool{}}
	seen := map[string]bool{}
	for _, s := range endpoints {
		ep, err := ParseEndpoint(s)
		if err != nil {
			return nil, err
		}
		if seen[ep.String()] {
			return nil, fmt.Errorf("plugin: failover endpoint %s given twice", ep)
		}
		seen[ep.String()] = true
		fe := &failoverEndpoint{ep: ep}
		fe.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        ep.String(),
			MaxRequests: 1,
			Timeout:     cfg.OpenTimeout,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.FailureThreshold },
			IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
			OnStateChange: func(name string, from, to gobreaker.State) {
				if to == gobreaker.StateOpen {
					fe.opened.Store(time.Now().UnixNano())
				}
				cfg.Logger.Info("failover breaker", "endpoint", name, "from", from.String(), "to", to.String())
				if cfg.OnStateChange != nil {
					cfg.OnStateChange(name, from, to)
				}
			},
		})
		f.eps = append(f.eps, fe)
	}
	return f, nil
}

// FailoverError reports that no endpoint could be dialed; it names each
// endpoint with why it was skipped or failed.
type FailoverError struct {
	Attempts map[string]error // endpoint URL -> cause
}

// Error lists every endpoint with its cause.
func (e *FailoverError) Error() string {
	keys := make([]string, 0, len(e.Attempts))
	for k := range e.Attempts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Attempts[k].Error()
	}
	return "plugin: no endpoint reachable (" + strings.Join(parts, "; ") + ")"
}

// Unwrap returns the causes.
func (e *FailoverError) Unwrap() []error {
	out := make([]error, 0, len(e.Attempts))
	for _, err := range e.Attempts {
		out = append(out, err)
	}
	return out
}

// order returns the endpoints to try: half-open ones first (their probe is
// the only way back in), then closed ones by fewest live connections, ties
// rotated; open ones are left out.
func (f *FailoverDialer) order() (try []*failoverEndpoint, skipped []*failoverEndpoint) {
	n := len(f.eps)
	start := int(f.next.Add(1) % uint64(n))
	var probes, closed []*failoverEndpoint
	for i := 0; i < n; i++ {
		fe := f.eps[(start+i)%n]
		switch fe.cb.State() {
		case gobreaker.StateHalfOpen:
			probes = append(probes, fe)
		case gobreaker.StateClosed:
			closed = append(closed, fe)
		default:
			skipped = append(skipped, fe)
		}
	}
	slices.SortStableFunc(closed, func(a, b *failoverEndpoint) int {
		return int(a.active.Load() - b.active.Load())
	})
	return append(probes, closed...), skipped
}

// Dial connects to one healthy endpoint, trying the others in turn when an
// attempt fails. The error is a *[FailoverError] when every endpoint failed
// or was skipped by its open breaker.
func (f *FailoverDialer) Dial(ctx context.Context) (net.Conn, error) {
	try, skipped := f.order()
	fail := &FailoverError{Attempts: map[string]error{}}
	for _, fe := range skipped {
		fail.Attempts[fe.ep.String()] = gobreaker.ErrOpenState
	}
	for _, fe := range try {
		done, err := fe.cb.Allow()
		if err != nil {
			fail.Attempts[fe.ep.String()] = err
			continue
		}
		fe.dials.Add(1)
		actx, cancel := context.WithTimeout(ctx, f.cfg.DialTimeout)
		c, err := f.t.DialEndpoint(actx, fe.ep)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				done(errCallerGone)
				return nil, fmt.Errorf("plugin: failover dial: %w", ctx.Err())
			}
			fe.failures.Add(1)
			done(err)
			fail.Attempts[fe.ep.String()] = err
			continue
		}
		done(nil)
		fe.active.Add(1)
		if st, ok := c.(*reliable.Stream); ok {
			f.watch(fe, st.Session())
		}
		return &failoverConn{Conn: c, f: f, fe: fe}, nil
	}
	return nil, fail
}

// watch trips fe's breaker when s ends because of its peer or a timeout.
func (f *FailoverDialer) watch(fe *failoverEndpoint, s *reliable.Session) {
	f.mu.Lock()
	if f.closed || f.watched[s] {
		f.mu.Unlock()
		return
	}
	f.watched[s] = true
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		select {
		case <-s.Done():
			if err := s.Err(); peerGoingAway(err) {
				f.trip(fe, err)
			}
		case <-f.done:
		}
		f.mu.Lock()
		delete(f.watched, s)
		f.mu.Unlock()
	}()
}

// peerGoingAway reports whether err says the endpoint is leaving or gone:
// a session the peer closed or that timed out.
func peerGoingAway(err error) bool {
	var se *reliable.SessionError
	return errors.As(err, &se) && (se.Remote || se.Code != reliable.CodeNoError)
}

// trip opens fe's breaker by recording failures until it opens.
func (f *FailoverDialer) trip(fe *failoverEndpoint, cause error) {
	fe.failures.Add(1)
	f.cfg.Logger.Info("failover endpoint going away", "endpoint", fe.ep.String(), "cause", cause.Error())
	for i := uint32(0); i < f.cfg.FailureThreshold && fe.cb.State() != gobreaker.StateOpen; i++ {
		done, err := fe.cb.Allow()
		if err != nil {
			return
		}
		done(cause)
	}
}

// Close ends the session watchers. Connections already dialed stay open;
// further Dial calls still work but no longer watch sessions. It is
// idempotent.
func (f *FailoverDialer) Close() error {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// DialContext ignores network and addr and calls Dial: every address is
// served by the same set of endpoints. It fits kgo.Dialer for a one-broker
// cluster and gRPC's WithContextDialer.
func (f *FailoverDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	return f.Dial(ctx)
}

// EndpointStatus is one endpoint's health as seen by a [FailoverDialer].
type EndpointStatus struct {
	Endpoint   string    // URL
	State      string    // breaker state: "closed", "half-open" or "open"
	Active     int64     // live connections dialed through it
	Dials      uint64    // attempts
	Failures   uint64    // failed attempts and failed connections
	LastOpened time.Time // when the breaker last opened; zero if never
}

// Status returns every endpoint's health, in the order given.
func (f *FailoverDialer) Status() []EndpointStatus {
	out := make([]EndpointStatus, len(f.eps))
	for i, fe := range f.eps {
		var opened time.Time
		if ns := fe.opened.Load(); ns != 0 {
			opened = time.Unix(0, ns)
		}
		out[i] = EndpointStatus{
			Endpoint: fe.ep.String(), State: fe.cb.State().String(), Active: fe.active.Load(),
			Dials: fe.dials.Load(), Failures: fe.failures.Load(), LastOpened: opened,
		}
	}
	return out
}

// failoverConn tracks a live connection of an endpoint and reports its
// failure (an error other than EOF, a deadline or our own Close) to the
// endpoint's breaker, once.
type failoverConn struct {
	net.Conn
	f        *FailoverDialer
	fe       *failoverEndpoint
	once     sync.Once
	reported atomic.Bool
	closed   atomic.Bool
}

// peerStoppedReading reports whether err is the peer's STOP_SENDING: a
// Write fails with it when the peer closed its reading side, for example
// a Relay that refuses a stream resets it and closes it, and the close
// may arrive before the reset is read.
func peerStoppedReading(err error) bool {
	var se *reliable.StreamError
	return errors.As(err, &se) && se.Remote && se.Op == "stop sending"
}

// relayRefusal reports whether err is a [Relay] refusing the stream with
// one of its reset codes, and whether that code says the relay is leaving.
func relayRefusal(err error) (refused, leaving bool) {
	var se *reliable.StreamError
	if !errors.As(err, &se) || !se.Remote {
		return false, false
	}
	switch se.Code {
	case CodeDraining:
		return true, true
	case CodeUpstreamUnreachable, CodeBusy:
		return true, false
	}
	return false, false
}

func (c *failoverConn) observe(err error) {
	if err == nil || c.closed.Load() {
		return
	}
	if peerStoppedReading(err) {
		return // the peer closed its side; its reset, read next, says why
	}
	if refused, leaving := relayRefusal(err); refused {
		if c.reported.Swap(true) {
			return
		}
		if leaving {
			c.f.trip(c.fe, err)
			return
		}
		c.fe.failures.Add(1)
		if done, aerr := c.fe.cb.Allow(); aerr == nil {
			done(err)
		}
		return
	}
	if peerGoingAway(err) {
		if !c.reported.Swap(true) {
			c.f.trip(c.fe, err)
		}
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return
	}
	if c.reported.Swap(true) {
		return
	}
	c.fe.failures.Add(1)
	if done, aerr := c.fe.cb.Allow(); aerr == nil {
		done(errStreamFailed)
	}
}

// Read reads from the connection, watching for failures and refusals.
func (c *failoverConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.observe(err)
	return n, err
}

// Write writes to the connection, watching for failures.
func (c *failoverConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.observe(err)
	return n, err
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *failoverConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("plugin: %T cannot half-close", c.Conn)
}

// Close closes the connection; it no longer counts as live.
func (c *failoverConn) Close() error {
	c.closed.Store(true)
	c.once.Do(func() { c.fe.active.Add(-1) })
	return c.Conn.Close()
}
