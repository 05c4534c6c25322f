package reliable

import (
	"math"
	"time"
)

// cubic is CUBIC congestion control (RFC 9438) in bytes, with proportional
// rate reduction (RFC 6937) while it recovers from a loss.
//
// Outside recovery the window follows the cubic function of the time since
// the last congestion event, W_cubic(t) = C·(t−K)³ + W_max (segments,
// seconds), or the Reno-friendly estimate W_est when that is larger (on short
// round trips W_est dominates: the cubic curve's time scale is seconds). A
// congestion event sets ssthresh to β·cwnd (β = 0.7, not NewReno's 0.5, so a
// random loss costs less) and remembers W_max, lowered further when the
// window had not regained the previous W_max (fast convergence, §4.7).
//
// During recovery the window is not cut at once: PRR lets the sender send in
// proportion to what the peer delivers, ssthresh/RecoverFS bytes per
// delivered byte, so that the window glides down to ssthresh over one round
// trip instead of stalling; once the flight is below ssthresh it grows back
// towards it by at most one segment more than delivered per ACK (PRR-SSRB).
//
// Random loss is not congestion (tolerance > 0, the default of a session):
// a loss starts a congestion event only once the recent loss rate (a moving
// average over about lossRateWindow packets of the losses not yet answered
// by a reduction) exceeds the tolerance, as BBRv2 bounds its flight only
// above a loss rate of 2%. A full bottleneck queue drops a burst, an
// overloaded bufferless one drops a growing share of the excess: either
// soon passes the tolerance. A lossy link's random drops do not, and cost
// only their retransmission, where a reduction for each (NewReno, or CUBIC as
// RFC 9438 writes it) caps a 1% lossy path at about 1.22/√p = 12 segments
// per round trip (a tenth of 100 MB/s on a 2 ms path). The price: against
// such a loss-based flow, this one takes more than its share of a bottleneck
// that drops less than the tolerance. The RTT is no help in telling the two
// apart: on a loaded host it rises by milliseconds with no queue on the path.
//
// PRR's pipe is the session's own count of bytes in flight (recovery
// attaches it). Standing alone the controller counts from the
// OnPacketSent/OnAck/OnLoss calls, which is exact only if every
// acknowledgement reaches OnAck: recovery reports only those of packets sent
// while the window was in use, so its count must be the one used.
type cubic struct {
	mss      int
	cwnd     int
	ssthresh int
	flight   int  // bytes in flight by the controller's own count
	pipe     *int // recovery's bytes in flight, if attached; else &flight

	// random-loss tolerance
	tolerance float64 // loss rate taken as random, not congestion; 0: none
	lossRate  float64 // moving average over about lossRateWindow packets
	attached  bool    // recovery reports every acknowledgement (onAnyAck)
	tolerated uint64  // losses not taken as congestion
	events    uint64  // congestion events (window reductions)

	// cubic state (RFC 9438 §4)
	wMax      float64   // window before the last reduction, segments
	k         float64   // seconds to regain wMax
	epoch     time.Time // start of the current congestion-avoidance epoch
	cwndEpoch float64   // window at epoch start, segments
	wEst      float64   // Reno-friendly estimate, segments
	lastAck   time.Time
	fullAt    time.Time // last send that filled at least half the window

	// recovery and PRR (RFC 6937 §3)
	recoveryStart time.Time // a loss of a packet sent after it starts a new event
	inRecovery    bool
	recoverFS     int // bytes in flight when recovery started
	prrDelivered  int // bytes delivered since recovery started
	prrOut        int // bytes sent since recovery started

	undo  undoMark  // an undo episode is open (congestion.go undoController)
	saved cubicUndo // the state before its first reduction, while undo == undoSaved
}

// cubicUndo is the window state of CUBIC before a reduction (RFC 9438 §4.9:
// cwnd, ssthresh, W_max, K, the epoch and W_est), recovery's included.
type cubicUndo struct {
	cwnd, ssthresh       int
	wMax, k              float64
	epoch                time.Time
	cwndEpoch, wEst      float64
	recoveryStart        time.Time
	inRecovery           bool
	recoverFS            int
	prrDelivered, prrOut int
}

// CUBIC constants (RFC 9438 §4.1, §4.2, §4.3).
const (
	cubicC     = 0.4
	cubicBeta  = 0.7
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

const (
	// DefaultLossTolerance is the loss rate CUBIC takes as random, not
	// congestion ([Config.LossTolerance]).
	DefaultLossTolerance = 0.02
	lossRateWindow       = 1024 // packets the loss rate averages over
	maxLossTolerance     = 0.25 // Config.LossTolerance's ceiling
)

func newCubic(mss int) *cubic {
	c := &cubic{mss: mss, cwnd: initialWindowPackets * mss, ssthresh: math.MaxInt}
	c.pipe = &c.flight
	return c
}

// newTolerantCubic is CUBIC that takes losses up to rate tolerance as random
// (tolerance <= 0: every loss is congestion).
func newTolerantCubic(mss int, tolerance float64) *cubic {
	c := newCubic(mss)
	c.tolerance = max(tolerance, 0)
	return c
}

// randomLoss reports whether a loss now is taken as random rather than as a
// congestion event: tolerance is on and the loss rate is within it.
func (c *cubic) randomLoss() bool {
	return c.tolerance > 0 && c.lossRate <= c.tolerance
}

// onAnyAck is told of every acknowledged packet (OnAck only of those sent
// while the window was in use): the loss rate's denominator.
func (c *cubic) onAnyAck() {
	c.attached = true
	c.lossRate -= c.lossRate / lossRateWindow
}

// sessionController is what recovery tells this package's controllers
// beyond [CongestionControl].
type sessionController interface {
	attachFlight(inFlight *int)
	onAnyAck()
}

var _ sessionController = (*cubic)(nil)

// attachFlight makes PRR use the session's count of bytes in flight (which
// recovery updates before each call into the controller).
func (c *cubic) attachFlight(inFlight *int) { c.pipe = inFlight }

func (c *cubic) OnPacketSent(now time.Time, bytes int) {
	c.flight += bytes
	if 2**c.pipe >= c.cwnd {
		c.fullAt = now
	}
	if c.inRecovery {
		c.prrOut += bytes
	}
}

func (c *cubic) OnAck(now time.Time, bytes int, sentAt time.Time, rtt *RTTStats) {
	c.flight = max(0, c.flight-bytes)
	if !c.attached {
		c.lossRate -= c.lossRate / lossRateWindow
	}
	if c.inRecovery {
		if sentAt.After(c.recoveryStart) {
			// A packet sent after the loss arrived: recovery is over (RFC
			// 6937 §3: cwnd = ssthresh), and a new epoch starts with it.
			c.inRecovery = false
			c.cwnd = c.ssthresh
			c.epoch = time.Time{}
		} else {
			c.prrDelivered += bytes
			c.prr(bytes)
			return
		}
	}
	// Grow only while the window is what limits the sender (RFC 9438 §5.8),
	// that is, the flight filled half of it or more within the last two round
	// trips (Linux's test in slow start): an application-limited sender would
	// otherwise inflate a window it never tested. Meanwhile the epoch moves
	// on, so the cubic curve does not run ahead.
	srtt := rtt.SmoothedRTT()
	if c.fullAt.IsZero() || now.Sub(c.fullAt) > 2*srtt {
		if !c.epoch.IsZero() && !c.lastAck.IsZero() {
			c.epoch = c.epoch.Add(now.Sub(c.lastAck))
		}
		c.lastAck = now
		return
	}
	c.lastAck = now
	if c.cwnd < c.ssthresh {
		c.cwnd += bytes // slow start
		return
	}
	c.avoid(now, bytes, srtt)
}

// avoid is congestion avoidance (RFC 9438 §4.2-4.4) for bytes acknowledged.
func (c *cubic) avoid(now time.Time, bytes int, srtt time.Duration) {
	mss := float64(c.mss)
	cw := float64(c.cwnd) / mss
	if c.epoch.IsZero() {
		c.epoch = now
		c.cwndEpoch = cw
		c.wEst = cw
		if c.wMax > cw {
			c.k = math.Cbrt((c.wMax - cw) / cubicC)
		} else {
			c.k = 0
			c.wMax = cw
		}
	}
	t := now.Sub(c.epoch).Seconds()
	target := c.wCubic(t + srtt.Seconds())
	target = min(max(target, cw), 1.5*cw) // §4.2: between cwnd and 1.5·cwnd

	// Reno-friendly estimate (§4.3): alpha per window acknowledged, 1 once
	// it has passed the previous maximum.
	alpha := cubicAlpha
	if c.wEst >= c.wMax {
		alpha = 1
	}
	c.wEst += alpha * float64(bytes) / float64(c.cwnd)

	var next float64
	if c.wCubic(t) < c.wEst {
		next = c.wEst
	} else {
		next = cw + (target-cw)*float64(bytes)/float64(c.cwnd)
	}
	if n := int(next * mss); n > c.cwnd {
		c.cwnd = n
	}
}

// wCubic is W_cubic(t) in segments (RFC 9438 §4.2, eq. 1).
func (c *cubic) wCubic(t float64) float64 {
	d := t - c.k
	return cubicC*d*d*d + c.wMax
}

func (c *cubic) OnLoss(now time.Time, bytes int, sentAt time.Time) {
	c.flight = max(0, c.flight-bytes)
	flight := *c.pipe + bytes // before this loss
	if !c.recoveryStart.IsZero() && !sentAt.After(c.recoveryStart) {
		if c.inRecovery {
			c.prr(0) // a further loss of the same event: the flight shrank
		}
		// One reduction per congestion event, and the loss rate counts
		// only losses not yet answered: the burst of an overshoot would
		// otherwise hold it above the tolerance long after the event.
		return
	}
	c.lossRate += (1 - c.lossRate) / lossRateWindow
	if c.randomLoss() {
		c.tolerated++ // resent within the window, which stays
		return
	}
	// A new congestion event (RFC 9438 §4.6, §4.7).
	c.save()
	c.events++
	cw := float64(c.cwnd) / float64(c.mss)
	if cw < c.wMax {
		c.wMax = cw * (1 + cubicBeta) / 2 // fast convergence
	} else {
		c.wMax = cw
	}
	c.ssthresh = max(int(float64(c.cwnd)*cubicBeta), minWindowPackets*c.mss)
	c.epoch = time.Time{}
	c.recoveryStart = now
	c.inRecovery = true
	c.recoverFS = max(flight, c.mss)
	c.prrDelivered, c.prrOut = 0, 0
	c.prr(0)
}

// prr sets the window for the next sends in recovery (RFC 6937 §3.1):
// cwnd = pipe + sndcnt, so the session may send sndcnt bytes now.
func (c *cubic) prr(delivered int) {
	pipe := *c.pipe
	var sndcnt int
	if pipe > c.ssthresh {
		// Proportional: ceil(prr_delivered·ssthresh/RecoverFS) − prr_out.
		sndcnt = int((int64(c.prrDelivered)*int64(c.ssthresh)+int64(c.recoverFS)-1)/int64(c.recoverFS)) - c.prrOut
	} else {
		// Slow-start reduction bound: back up to ssthresh, at most one
		// segment more than delivered.
		sndcnt = min(c.ssthresh-pipe, max(c.prrDelivered-c.prrOut, delivered)+c.mss)
	}
	if c.prrOut == 0 {
		sndcnt = max(sndcnt, c.mss) // the first retransmission goes at once
	}
	c.cwnd = pipe + max(sndcnt, 0)
}

// OnPersistentCongestion is a congestion event that also collapses the
// window to the minimum (RFC 9438 §4.8, RFC 9002 §7.6.2): slow start then
// climbs back to β·cwnd.
func (c *cubic) OnPersistentCongestion() {
	c.save()
	c.events++
	c.wMax = float64(c.cwnd) / float64(c.mss)
	c.ssthresh = max(int(float64(c.cwnd)*cubicBeta), minWindowPackets*c.mss)
	c.cwnd = minWindowPackets * c.mss
	c.epoch = time.Time{}
	c.inRecovery = false
}

// save keeps the state before a reduction, if it is the first of an open
// undo episode.
func (c *cubic) save() {
	if c.undo != undoOpen {
		return
	}
	c.saved = cubicUndo{
		cwnd: c.cwnd, ssthresh: c.ssthresh, wMax: c.wMax, k: c.k, epoch: c.epoch,
		cwndEpoch: c.cwndEpoch, wEst: c.wEst, recoveryStart: c.recoveryStart,
		inRecovery: c.inRecovery, recoverFS: c.recoverFS, prrDelivered: c.prrDelivered, prrOut: c.prrOut,
	}
	c.undo = undoSaved
}

func (c *cubic) beginUndo() { c.undo = undoOpen }

// endUndo restores the saved state when asked and its window is the larger
// (RFC 9438 §4.9). The epoch comes back as it was: the cubic curve goes on
// from where the spurious event interrupted it.
func (c *cubic) endUndo(restore bool) bool {
	saved := c.undo == undoSaved
	c.undo = undoNone
	if !restore || !saved || c.saved.cwnd <= c.cwnd {
		return false
	}
	u := &c.saved
	c.cwnd, c.ssthresh, c.wMax, c.k, c.epoch = u.cwnd, u.ssthresh, u.wMax, u.k, u.epoch
	c.cwndEpoch, c.wEst, c.recoveryStart = u.cwndEpoch, u.wEst, u.recoveryStart
	c.inRecovery, c.recoverFS, c.prrDelivered, c.prrOut = u.inRecovery, u.recoverFS, u.prrDelivered, u.prrOut
	return true
}

func (c *cubic) congestionEvents() uint64 { return c.events }

func (c *cubic) inSlowStart() bool { return c.cwnd < c.ssthresh && !c.inRecovery }

func (c *cubic) Window() int { return max(c.cwnd, minWindowPackets*c.mss/2) }
