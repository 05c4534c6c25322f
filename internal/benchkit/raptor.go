package benchkit

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/raptormq/raptor/reliable"
)

func init() { builtin = append(builtin, &Raptor{}) }

// Raptor is the Raptor transport (package reliable) over kernel UDP with its
// default Config: one session per remote address, one stream per Dial. Its
// Kafka suite runs kfake on a reliable.Listener; compat/kafka/kafkabench
// runs it through compat/kafka's broker and dialer instead.
type Raptor struct {
	// Config applies to both the listener and the dialer; nil means defaults.
	Config *reliable.Config
	// Label, if set, is the transport's name instead of "raptor" (a variant
	// with another Config, such as "raptor-newreno").
	Label string

	mu       sync.Mutex
	dialer   *reliable.Dialer
	sessions map[*reliable.Session]struct{}
	last     string
}

// Name returns Label, or "raptor".
func (r *Raptor) Name() string {
	if r.Label != "" {
		return r.Label
	}
	return "raptor"
}

// Listen opens a Raptor listener on addr; Accept returns peer-opened streams.
func (r *Raptor) Listen(ctx context.Context, addr string) (net.Listener, error) {
	return reliable.Listen(addr, r.Config)
}

// Dial opens a stream to the Raptor listener at addr, over the session to
// addr that this transport already has, or a new one.
func (r *Raptor) Dial(ctx context.Context, addr string) (net.Conn, error) {
	r.mu.Lock()
	if r.dialer == nil {
		r.dialer = &reliable.Dialer{Config: r.dialConfig()}
	}
	d := r.dialer
	r.mu.Unlock()
	c, err := d.DialContext(ctx, "raptor", addr)
	if err == nil {
		r.Track(c)
	}
	return c, err
}

// Track adds the session of c, if it is a Raptor stream, to those whose
// counters RunStats sums at Close (for conns dialled by another dialer,
// such as compat/kafka's in the Kafka suite).
func (r *Raptor) Track(c net.Conn) {
	st, ok := c.(*reliable.Stream)
	if !ok {
		return
	}
	r.mu.Lock()
	if r.sessions == nil {
		r.sessions = map[*reliable.Session]struct{}{}
	}
	r.sessions[st.Session()] = struct{}{}
	r.mu.Unlock()
}

// RunStats summarises the counters of the sessions of the last run (until
// Close): packets, retransmissions, timeouts, NAKs, smoothed RTT.
func (r *Raptor) RunStats() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Close ends the sessions this transport dialled; a later Dial starts a new
// dialer, so that each run has sessions of its own.
func (r *Raptor) Close() error {
	r.mu.Lock()
	d := r.dialer
	r.dialer = nil
	var sum reliable.Stats
	for s := range r.sessions {
		sum.Add(s.Stats())
	}
	if len(r.sessions) > 0 {
		r.last = fmt.Sprintf("%d sessions: packets sent %d received %d, retransmits %d (spurious %d), RTOs %d (spurious %d, held %d), undos %d, window cuts %d, NAKs sent %d received %d, duplicates %d, smoothed RTT %v, cwnd %d B, datagrams %d B, stream bytes received %d (%.0f%% straight into a waiting Read, %.0f%% decrypted into the receive ring)",
			len(r.sessions), sum.Get(reliable.CounterPacketsSent), sum.Get(reliable.CounterPacketsReceived), sum.Get(reliable.CounterRetransmits), sum.Get(reliable.CounterSpuriousLosses),
			sum.Get(reliable.CounterRTOs), sum.Get(reliable.CounterSpuriousRTOs), sum.Get(reliable.CounterPTOHolds), sum.Get(reliable.CounterUndos), sum.Get(reliable.CounterCongestionEvents), sum.Get(reliable.CounterNaksSent), sum.Get(reliable.CounterNaksReceived), sum.Get(reliable.CounterDuplicates), sum.SmoothedRTT,
			sum.CongestionWindow, sum.DatagramSize, sum.Get(reliable.CounterStreamBytesReceived), streamPct(sum, reliable.CounterStreamBytesDirect), streamPct(sum, reliable.CounterStreamBytesOpenedInRing))
	}
	r.sessions = nil
	r.mu.Unlock()
	if d == nil {
		return nil
	}
	return d.Close()
}

// streamPct is the share of the stream bytes received that counter c
// counts: reliable.CounterStreamBytesDirect (straight into a waiting Read's
// buffer) or reliable.CounterStreamBytesOpenedInRing (decrypted into the
// receive ring).
func streamPct(s reliable.Stats, c reliable.Counter) float64 {
	if n := s.Get(reliable.CounterStreamBytesReceived); n > 0 {
		return 100 * float64(s.Get(c)) / float64(n)
	}
	return 0
}

// Fresh returns a Raptor transport with the same Config and a dialer of its
// own, so that its conns ride a session of their own.
func (r *Raptor) Fresh() Transport { return &Raptor{Config: r.Config, Label: r.Label} }

// dialConfig is the Config the benchmark's clients dial with: r.Config, and
// when it says nothing about server authentication, InsecureSkipServerAuth:
// the packets stay encrypted and authenticated as in every Raptor session,
// but a client of a remote `bench serve` has no pin to check, and
// authenticating the server costs nothing per packet.
func (r *Raptor) dialConfig() *reliable.Config { return r.DialConfig() }

// DialConfig is the Config the benchmark's clients dial with (see
// dialConfig), for stacks that dial by themselves (compat/kafka's dialer).
func (r *Raptor) DialConfig() *reliable.Config {
	var c reliable.Config
	if r.Config != nil {
		c = *r.Config
	}
	if c.TLS == nil && c.PinnedSHA256 == nil {
		c.InsecureSkipServerAuth = true
	}
	return &c
}
