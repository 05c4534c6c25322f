package reliable

import (
	"math"
	"time"
)

// CongestionControl decides how many bytes may be in flight (quic-go's
// internal/congestion interface is the model). Implementations are told
// about every sent, acknowledged and lost packet; time is passed in, and
// none of the methods may read the clock. A session calls them from one
// goroutine at a time. Plug one in with [Config.NewCongestionControl]; the
// session caps Window by [Config.MaxCongestionWindow].
type CongestionControl interface {
	// OnPacketSent records a packet of bytes that counts in flight.
	OnPacketSent(now time.Time, bytes int)
	// OnAck records acknowledged bytes of a packet sent at sentAt. It is
	// called only for packets sent while the window was in use (at least
	// half of it in flight), so that an application-limited sender does
	// not grow its window without evidence (RFC 9002 §7.8). rtt is the
	// session's estimate, read-only.
	OnAck(now time.Time, bytes int, sentAt time.Time, rtt *RTTStats)
	// OnLoss records lost bytes of a packet sent at sentAt (a congestion event
	// unless one already started after sentAt).
	OnLoss(now time.Time, bytes int, sentAt time.Time)
	// OnPersistentCongestion collapses the window after repeated timeouts.
	OnPersistentCongestion()
	// Window is the congestion window in bytes.
	Window() int
}

// newReno is NewReno congestion control in bytes (RFC 9002 §7, RFC 6582).
type newReno struct {
	mss           int
	cwnd          int
	ssthresh      int
	recoveryStart time.Time
	ackedInCA     int
	events        uint64 // window reductions

	undo  undoMark    // an undo episode is open; saved holds the state before its first reduction
	saved newRenoUndo // valid while undo == undoSaved
}

// newRenoUndo is the state of a NewReno controller before a reduction.
type newRenoUndo struct {
	cwnd, ssthresh, ackedInCA int
	recoveryStart             time.Time
}

const (
	initialWindowPackets = 32
	minWindowPackets     = 2
)

// NewNewReno returns NewReno congestion control (RFC 9002 §7) for
// datagrams of mss bytes: the default of [Config].
func NewNewReno(mss int) CongestionControl { return newNewReno(mss) }

// NoCongestionControl returns a controller that never limits the sender
// beyond flow control (for benchmarks on a dedicated link).
func NoCongestionControl(int) CongestionControl { return noCongestion{} }

func newNewReno(mss int) *newReno {
	return &newReno{mss: mss, cwnd: initialWindowPackets * mss, ssthresh: math.MaxInt}
}

func (c *newReno) OnPacketSent(time.Time, int) {}

func (c *newReno) OnAck(now time.Time, bytes int, sentAt time.Time, _ *RTTStats) {
	if !sentAt.After(c.recoveryStart) && !c.recoveryStart.IsZero() {
		return // acknowledged during recovery: no growth
	}
	if c.cwnd < c.ssthresh {
		c.cwnd += bytes
		return
	}
	c.ackedInCA += bytes
	if c.ackedInCA >= c.cwnd {
		c.ackedInCA -= c.cwnd
		c.cwnd += c.mss
	}
}

func (c *newReno) OnLoss(now time.Time, bytes int, sentAt time.Time) {
	if !c.recoveryStart.IsZero() && !sentAt.After(c.recoveryStart) {
		return // one reduction per recovery period
	}
	c.save()
	c.events++
	c.recoveryStart = now
	c.cwnd = max(c.cwnd/2, minWindowPackets*c.mss)
	c.ssthresh = c.cwnd
	c.ackedInCA = 0
}

func (c *newReno) OnPersistentCongestion() {
	c.save()
	c.events++
	c.cwnd = minWindowPackets * c.mss
	c.ackedInCA = 0
}

// save keeps the state before a reduction, if it is the first of an open
// undo episode.
func (c *newReno) save() {
	if c.undo == undoOpen {
		c.saved = newRenoUndo{cwnd: c.cwnd, ssthresh: c.ssthresh, ackedInCA: c.ackedInCA, recoveryStart: c.recoveryStart}
		c.undo = undoSaved
	}
}

func (c *newReno) beginUndo() { c.undo = undoOpen }

func (c *newReno) endUndo(restore bool) bool {
	saved := c.undo == undoSaved
	c.undo = undoNone
	if !restore || !saved || c.saved.cwnd <= c.cwnd {
		return false
	}
	c.cwnd, c.ssthresh, c.ackedInCA, c.recoveryStart = c.saved.cwnd, c.saved.ssthresh, c.saved.ackedInCA, c.saved.recoveryStart
	return true
}

func (c *newReno) Window() int { return c.cwnd }

func (c *newReno) congestionEvents() uint64 { return c.events }

// eventCounter is a controller that counts its window reductions (for
// CounterCongestionEvents): NewReno's every recovery period, CUBIC's
// congestion events, persistent congestion for both.
type eventCounter interface {
	congestionEvents() uint64
}

var (
	_ eventCounter = (*newReno)(nil)
	_ eventCounter = (*cubic)(nil)
)

// undoController is a controller whose reductions recovery can undo when
// they prove spurious (docs/PROTOCOL.md §8.13; RFC 9438 §4.9, the undo of
// RFC 5682 and Linux): recovery opens an episode at the first loss or
// timeout, the controller saves its state at the episode's first reduction
// (OnLoss starting a congestion event, OnPersistentCongestion), and recovery
// closes the episode, restoring that state if every loss of it proved
// spurious.
type undoController interface {
	// beginUndo opens an episode: the next reduction saves the state before it.
	beginUndo()
	// endUndo closes the episode. With restore, the state saved at its first
	// reduction comes back if its window is larger than the current one
	// (growth since then is kept); it reports whether it did.
	endUndo(restore bool) bool
}

// undoMark is where a controller is in an undo episode.
type undoMark uint8

const (
	undoNone  undoMark = iota // no episode open
	undoOpen                  // open, nothing reduced yet
	undoSaved                 // open, the state before the first reduction is saved
)

var (
	_ undoController = (*newReno)(nil)
	_ undoController = (*cubic)(nil)
)

// noCongestion never limits the sender beyond flow control.
type noCongestion struct{}

func (noCongestion) OnPacketSent(time.Time, int)                {}
func (noCongestion) OnAck(time.Time, int, time.Time, *RTTStats) {}
func (noCongestion) OnLoss(time.Time, int, time.Time)           {}
func (noCongestion) OnPersistentCongestion()                    {}
func (noCongestion) Window() int                                { return math.MaxInt / 2 }

// pacer spreads packets at gain × cwnd / srtt (pacingGainSS in slow start,
// pacingGainCA after) with a burst allowance, as a token bucket measured in
// bytes. Timers are coarse on a loaded host, so it
// never asks to wait less than pacingGranularity and lets a burst of that
// long's worth of sending (twice it) go at once, as quic-go's pacer does:
// a pacer that woke every few microseconds would cost more than it saves.
type pacer struct {
	budget   int // bytes that may go now
	last     time.Time
	maxBurst int     // the smallest burst allowed, bytes
	gain     float64 // rate = gain × cwnd / srtt; 0: pacingGainCA
}

const pacingGranularity = time.Millisecond

// Pacing gains (Linux's tcp_pacing_ss_ratio and RFC 9002 §7.7's N): in slow
// start the window may double within the round trip, and a pacer at 1.25 ×
// cwnd / srtt would spread even an application-limited burst of half the
// window over most of a round trip; in congestion avoidance the window
// grows slowly and 1.25 leaves room enough.
const (
	pacingGainSS = 2.0
	pacingGainCA = 1.25
)

func (p *pacer) rate(cwnd int, srtt time.Duration) float64 { // bytes per ns
	if srtt <= 0 {
		srtt = time.Microsecond
	}
	g := p.gain
	if g == 0 {
		g = pacingGainCA
	}
	return g * float64(cwnd) / float64(srtt)
}

// slowStarter is a controller that says whether it is in slow start (the
// pacer then runs at pacingGainSS).
type slowStarter interface {
	inSlowStart() bool
}

var (
	_ slowStarter = (*newReno)(nil)
	_ slowStarter = (*cubic)(nil)
)

func (c *newReno) inSlowStart() bool { return c.cwnd < c.ssthresh }

// burst is the most the bucket holds at rate r.
func (p *pacer) burst(r float64) int {
	return max(p.maxBurst, int(min(r*float64(2*pacingGranularity), math.MaxInt32)))
}

// refill adds tokens for the time since the last call.
func (p *pacer) refill(now time.Time, cwnd int, srtt time.Duration) {
	if p.last.IsZero() {
		p.budget = p.maxBurst
		p.last = now
		return
	}
	el := now.Sub(p.last)
	if el <= 0 {
		return
	}
	r := p.rate(cwnd, srtt)
	b := p.burst(r)
	if add := float64(el) * r; add > float64(b) {
		p.budget = b
	} else {
		p.budget = min(b, p.budget+int(add))
	}
	p.last = now
}

// delay is how long until size bytes may be sent (0 if now): at least
// pacingGranularity once the budget is spent.
func (p *pacer) delay(size, cwnd int, srtt time.Duration) time.Duration {
	if p.budget >= size {
		return 0
	}
	d := time.Duration(float64(size-p.budget) / p.rate(cwnd, srtt))
	return max(d, pacingGranularity)
}

func (p *pacer) onSent(size int) { p.budget -= size }
