package reliable

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/raptormq/raptor/wire"
)

// recoveryHandler is told what recovery decided about the contents of sent
// packets: the session frees acknowledged stream bytes and queues lost ones
// again. An interface, not closures, so that the hot path allocates nothing.
type recoveryHandler interface {
	onPacketAcked(p *sentPacket)
	onPacketLost(p *sentPacket)
}

// recovery is a session's sending half of loss recovery (docs/PROTOCOL.md
// §8, RFC 9002): the history of ack-eliciting packets in flight, ACK and NAK
// processing, loss detection by packet and time thresholds, the
// retransmission (probe) timeout with back-off, RTT estimation, congestion
// control and pacing. It owns the packet numbers, skipping one now and then
// so that a peer acknowledging packets it never received is caught (RFC 9000
// §21.4). Every method takes now; nothing here reads the clock, so tests
// drive it with a hand-advanced one.
type recovery struct {
	minRTO, maxRTO time.Duration
	peerAckDelay   time.Duration // the peer's max_ack_delay, already range-checked
	maxCwnd        int           // Config.MaxCongestionWindow

	sent     sentHistory
	rtt      RTTStats
	cc       CongestionControl
	pacer    pacer
	inFlight int

	nextPN        uint64
	nextSkip      uint64 // the next packet number left out (0: none yet chosen)
	skipPeriod    uint64 // average distance between skipped numbers; doubles
	skipped       [skippedKept]uint64
	nskipped      int
	rng           *rand.PCG
	ptoCount      int // consecutive timeouts without an acknowledgement
	probes        int // packets that may go regardless of the congestion window
	lossTime      time.Time
	lastEliciting time.Time // when the last ack-eliciting packet left
	largestAcked  uint64
	anyAcked      bool

	capped bool      // the window is at Config.MaxCongestionWindow
	paced  bool      // the pacer held a packet back since the last one left
	stats  *counters // the session's: retransmits, RTOs, limits, violations
}

const (
	skippedKept       = 16      // skipped packet numbers remembered
	skipInitialPeriod = 64      // first skip within about this many packets
	skipMaxPeriod     = 1 << 16 // the period doubles up to this
	persistentPTOs    = 3       // timeouts in a row that collapse the window
	pacerBurstPackets = 16      // packets the pacer lets go at once
	cwndLimitedShare  = 2       // the window grows only while at least 1/2 of it is in flight
)

func newRecovery(cfg *Config, seed uint64, stats *counters) *recovery {
	r := &recovery{
		minRTO: cfg.MinRTO, maxRTO: cfg.MaxRTO, maxCwnd: cfg.MaxCongestionWindow, stats: stats,
		cc:         cfg.newCongestionControl(),
		skipPeriod: skipInitialPeriod,
		rng:        rand.NewPCG(seed, seed^0x9e3779b97f4a7c15),
	}
	r.pacer.maxBurst = pacerBurstPackets * cfg.MaxDatagramSize
	r.chooseSkip()
	return r
}

// chooseSkip picks the next packet number to leave out, uniformly within
// the next 2 × skipPeriod numbers, and doubles the period up to its cap.
func (r *recovery) chooseSkip() {
	r.nextSkip = r.nextPN + 1 + r.rng.Uint64()%(2*r.skipPeriod)
	r.skipPeriod = min(2*r.skipPeriod, skipMaxPeriod)
}

// takePacketNumber returns the number of the next packet to send; the
// packet must be sent (numbers are never reused).
func (r *recovery) takePacketNumber() uint64 {
	if r.nextPN == r.nextSkip {
		r.skipped[r.nskipped%skippedKept] = r.nextPN
		r.nskipped++
		r.nextPN++
		r.chooseSkip()
	}
	pn := r.nextPN
	r.nextPN++
	return pn
}

// peekPacketNumber is the number takePacketNumber will return.
func (r *recovery) peekPacketNumber() uint64 {
	if r.nextPN == r.nextSkip {
		return r.nextPN + 1
	}
	return r.nextPN
}

// acksSkipped reports whether f acknowledges a skipped packet number above
// the largest acknowledged so far: an ACK that covers packets not yet
// acknowledged is what an optimistic peer sends ahead of receipt.
func (r *recovery) acksSkipped(f *wire.AckFrame) (uint64, bool) {
	for i := range min(r.nskipped, skippedKept) {
		if pn := r.skipped[i]; (!r.anyAcked || pn > r.largestAcked) && f.Acks(pn) {
			return pn, true
		}
	}
	return 0, false
}

// onPacketSent records an ack-eliciting packet (rec.pn from
// takePacketNumber). pacedData says it carried stream data (which the pacer
// meters).
func (r *recovery) onPacketSent(rec *sentPacket, now time.Time, pacedData bool) {
	// The window is in use if half of it is in flight or the pacer, whose
	// rate follows the window, is what holds the sender back (RFC 9002 §7.8).
	rec.cwndLimited = r.paced || r.inFlight+rec.size >= r.window()/cwndLimitedShare
	r.paced = false
	*r.sent.push() = *rec
	r.inFlight += rec.size
	r.cc.OnPacketSent(now, rec.size)
	r.lastEliciting = now
	if r.probes > 0 {
		r.probes--
	}
	if pacedData {
		r.pacer.onSent(rec.size)
	}
}

// window is the congestion window, capped by Config.MaxCongestionWindow.
func (r *recovery) window() int {
	w := r.cc.Window()
	if r.maxCwnd > 0 && w > r.maxCwnd {
		return r.maxCwnd
	}
	return w
}

// canSend reports whether size more bytes fit the congestion window (or a
// probe is due).
func (r *recovery) canSend(size int) bool {
	return r.inFlight+size <= r.window() || r.probes > 0
}

// pacingDelay is how long a packet of size bytes must wait for the pacer
// (0: it may go now); probes are not paced.
func (r *recovery) pacingDelay(size int) time.Duration {
	if r.probes > 0 {
		return 0
	}
	d := r.pacer.delay(size, r.window(), r.rtt.SmoothedRTT())
	if d > 0 {
		r.paced = true
	}
	return d
}

// refillPacer adds the pacer's tokens for the time since it last ran.
func (r *recovery) refillPacer(now time.Time) {
	r.pacer.refill(now, r.window(), r.rtt.SmoothedRTT())
}

// ackDelay converts the peer's ACK delay field (µs) into a duration no
// larger than its max_ack_delay, clamping before converting so that no
// value can overflow (RFC 9002 §5.3).
func (r *recovery) ackDelay(micros uint64) time.Duration {
	if maxUs := uint64(r.peerAckDelay / time.Microsecond); micros > maxUs {
		r.stats.inc(CounterLimitAckDelay)
		return r.peerAckDelay
	}
	return time.Duration(micros) * time.Microsecond
}

// onAck processes an ACK frame: newly acknowledged packets go to h, an RTT
// sample is taken on the largest, losses are detected. An ACK of a packet
// never sent or of a skipped number is a protocol violation.
func (r *recovery) onAck(f *wire.AckFrame, now time.Time, h recoveryHandler) error {
	largest := f.Largest()
	if largest >= r.nextPN {
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("ACK of packet %d that was never sent (next is %d)", largest, r.nextPN)}
	}
	if pn, ok := r.acksSkipped(f); ok {
		r.stats.inc(CounterViolationOptimisticAck)
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("ACK of packet %d, a number that was skipped, never sent (optimistic ACK)", pn)}
	}
	newly := false
	// Walk ranges from the smallest upwards over the history.
	for ri := len(f.Ranges) - 1; ri >= 0; ri-- {
		rg := f.Ranges[ri]
		for i := r.sent.search(rg.Smallest); i < r.sent.len(); i++ {
			p := r.sent.at(i)
			if p.pn > rg.Largest {
				break
			}
			if p.done {
				continue
			}
			if p.pn == largest {
				r.rtt.update(now.Sub(p.sentAt), r.ackDelay(f.AckDelay))
			}
			p.done = true
			r.inFlight -= p.size
			if p.cwndLimited {
				r.cc.OnAck(now, p.size, p.sentAt, &r.rtt)
			}
			h.onPacketAcked(p)
			newly = true
		}
	}
	if !r.anyAcked || largest > r.largestAcked {
		r.largestAcked, r.anyAcked = largest, true
	}
	if newly {
		r.ptoCount = 0
		r.detectLosses(now, h)
		r.sent.popDone()
		if w := r.cc.Window(); r.maxCwnd > 0 && w >= r.maxCwnd {
			if !r.capped {
				r.capped = true
				r.stats.inc(CounterLimitCwnd)
			}
		} else {
			r.capped = false
		}
	}
	return nil
}

// onNak declares the packets a NAK names lost at once.
func (r *recovery) onNak(f *wire.NakFrame, now time.Time, h recoveryHandler) {
	for _, rg := range f.Ranges {
		for i := r.sent.search(rg.Smallest); i < r.sent.len(); i++ {
			p := r.sent.at(i)
			if p.pn > rg.Largest {
				break
			}
			if !p.done {
				r.lose(p, now, true, h)
			}
		}
	}
	r.sent.popDone()
}

// detectLosses applies the packet and time thresholds (RFC 9002 §6.1) and
// sets lossTime to when the next packet would cross the time threshold.
func (r *recovery) detectLosses(now time.Time, h recoveryHandler) {
	r.lossTime = time.Time{}
	if !r.anyAcked {
		return
	}
	delay := r.rtt.lossDelay()
	for i := 0; i < r.sent.len(); i++ {
		p := r.sent.at(i)
		if p.pn >= r.largestAcked {
			break
		}
		if p.done {
			continue
		}
		if r.largestAcked-p.pn >= 3 || now.Sub(p.sentAt) >= delay {
			r.lose(p, now, true, h)
			continue
		}
		if t := p.sentAt.Add(delay); r.lossTime.IsZero() || t.Before(r.lossTime) {
			r.lossTime = t
		}
	}
}

// lose declares p lost. confirmed is false for a timeout's probe: the loss
// is only suspected, so the congestion window stays (RFC 9002 §6.2) until
// persistent congestion.
func (r *recovery) lose(p *sentPacket, now time.Time, confirmed bool, h recoveryHandler) {
	p.done = true
	r.inFlight -= p.size
	if p.ctl&ctlProbe != 0 {
		// A datagram size probe: lost for its size, not for congestion, and
		// nothing in it is sent again (docs/PROTOCOL.md §8.12).
		h.onPacketLost(p)
		return
	}
	if confirmed {
		r.cc.OnLoss(now, p.size, p.sentAt)
	}
	r.stats.inc(CounterRetransmits)
	h.onPacketLost(p)
}

// pto is the backed-off probe (retransmission) timeout.
func (r *recovery) pto() time.Duration {
	rto := r.rtt.rto(r.minRTO, r.peerAckDelay)
	if r.ptoCount == 0 && r.rtt.hasSample {
		// Tail-loss probe (RFC 8985 §7.2): the first timeout fires after two
		// smoothed RTTs plus the peer's ACK delay, however large the variance,
		// so a lone lost request costs a few RTTs, not a variance-inflated RTO.
		rto = min(rto, max(r.minRTO, 2*r.rtt.SmoothedRTT()+r.peerAckDelay))
	}
	for i := 0; i < r.ptoCount && rto < r.maxRTO; i++ {
		rto *= 2
	}
	return min(rto, r.maxRTO)
}

// nextDeadline is when onTimeout must run next (zero: no deadline).
func (r *recovery) nextDeadline() time.Time {
	next := r.lossTime
	if r.sent.oldest() != nil {
		if t := r.lastEliciting.Add(r.pto()); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

// onTimeout runs the loss-time and probe deadlines that have passed. It
// reports whether a probe timeout fired (the session then sends a probe:
// the oldest packet's contents, or a PING).
func (r *recovery) onTimeout(now time.Time, h recoveryHandler) (probe bool) {
	if !r.lossTime.IsZero() && !now.Before(r.lossTime) {
		r.detectLosses(now, h)
		r.sent.popDone()
	}
	p := r.sent.oldest()
	if p == nil || now.Before(r.lastEliciting.Add(r.pto())) {
		return false
	}
	if p.ctl&ctlProbe != 0 {
		// The oldest packet is a datagram size probe: its loss says nothing
		// about congestion, so this timeout neither backs off nor probes
		// (the next pass sees the packets after it, if any).
		r.lose(p, now, false, h)
		r.sent.popDone()
		return false
	}
	r.ptoCount++
	r.stats.inc(CounterRTOs)
	r.lose(p, now, false, h)
	r.sent.popDone()
	r.probes = 2
	r.lastEliciting = now
	if r.ptoCount >= persistentPTOs {
		r.cc.OnPersistentCongestion()
	}
	return true
}

// lingerTime is how long a closing session stays to repeat its CLOSE: a few
// RTOs, at most 1 s.
func (r *recovery) lingerTime() time.Duration {
	if !r.rtt.hasSample {
		return 100 * time.Millisecond
	}
	return min(3*r.rtt.rto(r.minRTO, r.peerAckDelay), time.Second)
}
