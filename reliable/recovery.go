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
// processing, loss detection by packet threshold and RACK (RFC 8985), the
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
	sc       sessionController // cc, if it is one of ours that wants more
	uc       undoController    // cc, if its reductions can be undone
	ec       eventCounter      // cc, if it counts its reductions
	ss       slowStarter       // cc, if it says when it is in slow start (pacing gain)
	events   uint64            // ec's count as last seen
	undo     undoEpisode
	pacer    pacer
	inFlight int

	nextPN        uint64
	nextSkip      uint64 // the next packet number left out (0: none yet chosen)
	skipPeriod    uint64 // average distance between skipped numbers; doubles
	skipped       [skippedKept]uint64
	nskipped      int
	rng           *rand.PCG
	ptoCount      int       // consecutive timeouts without an acknowledgement
	stalledSince  time.Time // while ptoCount > 0: when the oldest packet of the first timeout left
	probes        int       // packets that may go regardless of the congestion window
	lossTime      time.Time // the RACK timer: when the next packet crosses the time threshold
	rack          rackState
	lastEliciting time.Time // when the last ack-eliciting packet left
	largestAcked  uint64
	anyAcked      bool

	// A probe timeout due while received datagrams wait to be read is held
	// (docs/PROTOCOL.md §8.5): an ACK among them would prove it spurious.
	rx       datagramWaiter // the endpoint's socket, if it can tell; nil: never held
	ptoHeld  time.Time      // a due probe timeout waits until then
	ptoHolds int            // holds since the last acknowledgement or timeout

	capped bool      // the window is at Config.MaxCongestionWindow
	paced  bool      // the pacer held a packet back since the last one left
	stats  *counters // the session's: retransmits, RTOs, limits, violations
}

const (
	skippedKept       = 16                     // skipped packet numbers remembered
	skipInitialPeriod = 64                     // first skip within about this many packets
	skipMaxPeriod     = 1 << 16                // the period doubles up to this
	persistentPTOs    = 3                      // timeouts in a row that collapse the window
	pacerBurstPackets = initialWindowPackets   // packets the pacer lets go at once (RFC 9002 §7.7: bursts of the initial window)
	cwndLimitedShare  = 2                      // the window grows only while at least 1/2 of it is in flight
	ptoHoldTime       = 500 * time.Microsecond // a due probe timeout waits this long for waiting datagrams
	maxPTOHolds       = 4                      // at most this many times in a row
)

// datagramWaiter is the optional capability of a [PacketConn] to tell
// whether a received datagram waits in it, not yet read (internal/udpio on
// Linux: ioctl SIOCINQ).
type datagramWaiter interface {
	Pending() bool
}

// rackState is RACK-TLP's (RFC 8985 §6): the most recently sent packet
// that was delivered, the reordering window and its adaptation, and the
// recovery episodes that decay it. Packet numbers are never reused (a
// retransmission is a new packet), so send order is packet-number order and
// every RTT sample is unambiguous.
type rackState struct {
	pn        uint64        // most recently sent packet delivered (RACK.xmit_ts's packet)
	sentAt    time.Time     // its send time (RACK.xmit_ts)
	rtt       time.Duration // its RTT (RACK.rtt)
	delivered bool          // pn, sentAt, rtt are set

	reorderingSeen bool   // a packet was delivered after a later-sent one, or a loss was spurious
	reoWndMult     int    // reo_wnd in units of min RTT/4 (RACK.reo_wnd_mult)
	reoWndPersist  int    // recoveries left before the multiplier decays (RACK.reo_wnd_persist)
	dsackRound     uint64 // the multiplier grows again once this packet is acknowledged (0: any time)
	inRecovery     bool   // a loss episode is open
	recoveryEnd    uint64 // it closes when a packet numbered this or later is acknowledged

	recentLost [rackLostKept]lostRecord // recently declared lost, to catch spurious losses
	lostLive   int                      // records of recentLost in use (lostAt set)
	nextLost   int
	spurious   uint64 // losses found spurious (a late ACK of a packet declared lost)
}

// lostRecord remembers a packet declared lost.
type lostRecord struct {
	pn      uint64
	lostAt  time.Time // zero: empty or already matched
	episode uint32    // the undo episode it belongs to
	timeout bool      // declared lost by a probe timeout, not by RACK or a NAK
}

// undoEpisode is the run of losses whose congestion response may be undone
// (docs/PROTOCOL.md §8.13): it opens at the first loss or timeout while
// none is open and collects every loss after it. An ACK of a packet declared
// lost proves that loss spurious (a retransmission carries a new packet
// number, so the ACK is of the original); once every loss of the episode is
// proven so, the reductions are undone: the controller's state saved at the
// first one, and the timeout back-off. A loss that cannot be proven spurious
// (remembered too long, or pushed out of recentLost) ends the episode as
// real.
type undoEpisode struct {
	open     bool
	id       uint32        // of the open or last episode
	pending  int           // its losses not yet proven spurious
	ptoCount int           // recovery.ptoCount when it opened
	timeouts int           // probe timeouts in it
	memory   time.Duration // the longest undoMemory while a loss of it was declared
}

const (
	rackPacketThreshold = 3  // DupThresh: packets acknowledged above one that is lost (RFC 8985 §6.2, RFC 9002 §6.1.1)
	rackReoWndPersist   = 16 // recoveries a grown reordering window lasts (RFC 8985 §6.2 step 4)
	rackLostKept        = 64 // lost packets remembered for spurious-loss detection
	rackLostMemoryRTTs  = 4  // for this many smoothed RTTs as reordering (and at least two PTOs for undo)
)

func newRecovery(cfg *Config, seed uint64, stats *counters) *recovery {
	r := &recovery{
		minRTO: cfg.MinRTO, maxRTO: cfg.MaxRTO, maxCwnd: cfg.MaxCongestionWindow, stats: stats,
		cc:         cfg.newCongestionControl(),
		skipPeriod: skipInitialPeriod,
		rng:        rand.NewPCG(seed, seed^0x9e3779b97f4a7c15),
	}
	r.rack.reoWndMult = 1
	if sc, ok := r.cc.(sessionController); ok {
		sc.attachFlight(&r.inFlight) // our own controllers: PRR's pipe
		r.sc = sc
	}
	r.uc, _ = r.cc.(undoController)
	r.ec, _ = r.cc.(eventCounter)
	r.ss, _ = r.cc.(slowStarter)
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

// refillPacer adds the pacer's tokens for the time since it last ran, at
// the gain of the controller's phase.
func (r *recovery) refillPacer(now time.Time) {
	r.pacer.gain = pacingGainCA
	if r.ss != nil && r.ss.inSlowStart() {
		r.pacer.gain = pacingGainSS
	}
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
	prevLargest, hadAcked := r.largestAcked, r.anyAcked
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
			if r.sc != nil {
				r.sc.onAnyAck()
			}
			if p.cwndLimited {
				r.cc.OnAck(now, p.size, p.sentAt, &r.rtt)
			}
			r.rackDelivered(p, now, hadAcked && p.pn < prevLargest)
			h.onPacketAcked(p)
			newly = true
		}
	}
	spurious := r.findSpurious(f, now)
	if !r.anyAcked || largest > r.largestAcked {
		r.largestAcked, r.anyAcked = largest, true
	}
	r.updateReoWnd(spurious)
	if newly {
		r.ptoCount = 0
		r.ptoHolds = 0
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

// rackDelivered updates RACK's most recently sent delivered packet (RFC 8985
// §6.2 steps 2 and 3) with p, acknowledged now; late says a packet sent after
// p had been acknowledged before it: reordering.
func (r *recovery) rackDelivered(p *sentPacket, now time.Time, late bool) {
	if late {
		r.rack.reorderingSeen = true
	}
	if !r.rack.delivered || p.pn > r.rack.pn {
		r.rack.pn, r.rack.sentAt, r.rack.rtt, r.rack.delivered = p.pn, p.sentAt, now.Sub(p.sentAt), true
	}
}

// findSpurious reports whether f acknowledges a packet that RACK or a NAK
// declared lost within the last few RTTs (the DSACK of RFC 8985 §6.2 step
// 4: the loss was reordering, not loss). Every acknowledged loss, a
// timeout's too, counts towards undoing its episode; a loss of the open
// episode remembered longer than undoMemory ends it as real.
func (r *recovery) findSpurious(f *wire.AckFrame, now time.Time) bool {
	found := false
	// Most ACKs find no loss remembered: then there is nothing to scan.
	var reorder, keep time.Duration
	if r.rack.lostLive > 0 {
		reorder, keep = rackLostMemoryRTTs*r.rtt.SmoothedRTT(), r.undoMemory()
	}
	for i := 0; i < rackLostKept && r.rack.lostLive > 0; i++ {
		lr := &r.rack.recentLost[i]
		if lr.lostAt.IsZero() {
			continue
		}
		ours := r.undo.open && lr.episode == r.undo.id
		age := now.Sub(lr.lostAt)
		switch {
		case f.Acks(lr.pn):
			if !lr.timeout && age <= reorder {
				found = true
				r.rack.spurious++
			}
			if lr.timeout {
				r.stats.inc(CounterSpuriousRTOs)
			} else {
				r.stats.inc(CounterSpuriousLosses)
			}
			if ours {
				r.undo.pending--
			}
			lr.lostAt = time.Time{}
			r.rack.lostLive--
		case age > keep:
			lr.lostAt = time.Time{}
			r.rack.lostLive--
			if ours {
				r.endEpisode(false)
			}
		}
	}
	if found {
		r.rack.reorderingSeen = true
	}
	if r.undo.open && r.undo.pending == 0 {
		r.endEpisode(true)
	}
	return found
}

// undoMemory is how long a loss stays provable spurious: four smoothed
// RTTs, and at least two probe timeouts as backed off when a loss of the
// open episode was declared (a timeout's ACK arrives after it, and an ACK
// that ends the back-off must still be able to prove the episode's first
// timeout spurious).
func (r *recovery) undoMemory() time.Duration {
	return max(rackLostMemoryRTTs*r.rtt.SmoothedRTT(), 2*r.pto(), r.undo.memory)
}

// rememberLost records p, declared lost now, for spurious-loss detection
// and in the undo episode, opened if none is.
func (r *recovery) rememberLost(p *sentPacket, now time.Time, timeout bool) {
	r.openEpisode()
	slot := &r.rack.recentLost[r.rack.nextLost]
	if !slot.lostAt.IsZero() && slot.episode == r.undo.id {
		// A loss of this episode would be forgotten unproven: it can no
		// longer be undone. A new one starts with p.
		r.endEpisode(false)
		r.openEpisode()
	}
	if !slot.lostAt.IsZero() {
		r.rack.lostLive--
	}
	*slot = lostRecord{pn: p.pn, lostAt: now, episode: r.undo.id, timeout: timeout}
	if !now.IsZero() {
		r.rack.lostLive++
	}
	r.rack.nextLost = (r.rack.nextLost + 1) % rackLostKept
	r.undo.pending++
	r.undo.memory = max(r.undo.memory, 2*r.pto())
	if timeout {
		r.undo.timeouts++
	}
}

// openEpisode opens an undo episode unless one is open; the controller then
// saves its state at its next reduction.
func (r *recovery) openEpisode() {
	if r.undo.open {
		return
	}
	r.undo = undoEpisode{open: true, id: r.undo.id + 1, ptoCount: r.ptoCount}
	if r.uc != nil {
		r.uc.beginUndo()
	}
}

// endEpisode closes the open undo episode; spurious says every loss of it
// was proven spurious: the controller's state before its reductions comes
// back and so does the timeout back-off before it.
//
// CounterUndos counts the episodes whose undo changed something: a window
// reduction or a timeout (a spurious random loss that CUBIC tolerated cost
// no reduction and counts only as a spurious loss).
func (r *recovery) endEpisode(spurious bool) {
	r.undo.open = false
	restored := r.uc != nil && r.uc.endUndo(spurious)
	if spurious {
		r.ptoCount = min(r.ptoCount, r.undo.ptoCount)
		if restored || r.undo.timeouts > 0 {
			r.stats.inc(CounterUndos)
		}
	}
}

// updateReoWnd adapts the reordering window (RFC 8985 §6.2 step 4): a
// spurious loss widens it by min RTT/4, at most once per round trip; it
// narrows back to min RTT/4 after 16 recoveries without one. It also closes
// the loss episode once a packet sent after it began is acknowledged.
func (r *recovery) updateReoWnd(spurious bool) {
	k := &r.rack
	if k.dsackRound != 0 && r.largestAcked >= k.dsackRound {
		k.dsackRound = 0
	}
	ended := k.inRecovery && r.largestAcked >= k.recoveryEnd
	if ended {
		k.inRecovery = false
	}
	switch {
	case spurious && k.dsackRound == 0:
		k.reoWndMult++
		k.dsackRound = r.nextPN
		k.reoWndPersist = rackReoWndPersist
	case ended && k.reoWndPersist > 0:
		if k.reoWndPersist--; k.reoWndPersist == 0 {
			k.reoWndMult = 1
		}
	}
}

// reoWnd is the reordering window (RFC 8985 §6.2 step 4): min RTT/4 times
// the multiplier, at most the smoothed RTT; zero while no reordering was
// ever seen and a loss episode is open (then losses are not reordering).
func (r *recovery) reoWnd() time.Duration {
	if !r.rack.reorderingSeen && r.rack.inRecovery {
		return 0
	}
	return min(r.rtt.MinRTT()/4*time.Duration(r.rack.reoWndMult), r.rtt.SmoothedRTT())
}

// onNak handles the receiver's report of a gap. Until any reordering was
// seen a NAK declares the packets it names lost at once (a gap on a path
// that does not reorder is a loss); afterwards the gap may be reordering, so
// they are lost only when RACK's reordering window says so.
func (r *recovery) onNak(f *wire.NakFrame, now time.Time, h recoveryHandler) {
	if r.rack.reorderingSeen {
		r.detectLosses(now, h)
		r.sent.popDone()
		return
	}
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
	r.detectLosses(now, h) // the RACK timer, for what is left
	r.sent.popDone()
}

// detectLosses is RACK's loss detection (RFC 8985 §6.2 step 5): a packet
// sent before the most recently delivered one is lost once it is older than
// that one's RTT plus the reordering window, or, until reordering is seen,
// once rackPacketThreshold later packets were acknowledged. It sets lossTime
// (the RACK timer) to when the next packet would cross the time threshold.
func (r *recovery) detectLosses(now time.Time, h recoveryHandler) {
	r.lossTime = time.Time{}
	if !r.rack.delivered {
		return
	}
	threshold := r.rack.rtt + r.reoWnd()
	for i := 0; i < r.sent.len(); i++ {
		p := r.sent.at(i)
		if p.pn >= r.rack.pn {
			break
		}
		if p.done {
			continue
		}
		if (!r.rack.reorderingSeen && r.largestAcked-p.pn >= rackPacketThreshold) || now.Sub(p.sentAt) >= threshold {
			r.lose(p, now, true, h)
			// The first loss of an episode closes the reordering window
			// for the rest of it (unless reordering was seen).
			threshold = r.rack.rtt + r.reoWnd()
			continue
		}
		if t := p.sentAt.Add(threshold); r.lossTime.IsZero() || t.Before(r.lossTime) {
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
	// A late ACK of p proves this loss spurious. Of a RACK or NAK loss it
	// is also reordering; of a timeout's it is not: it says the RTT spiked
	// (a loaded host), not that the path reorders.
	r.rememberLost(p, now, !confirmed)
	if confirmed {
		r.cc.OnLoss(now, p.size, p.sentAt)
		r.countEvents()
	}
	if !r.rack.inRecovery {
		r.rack.inRecovery, r.rack.recoveryEnd = true, r.nextPN
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

// ptoDeadline is when the probe timeout fires: lastEliciting plus the
// backed-off PTO, or later while it is held.
func (r *recovery) ptoDeadline() time.Time {
	t := r.lastEliciting.Add(r.pto())
	if r.ptoHeld.After(t) {
		return r.ptoHeld
	}
	return t
}

// holdPTO reports whether a due probe timeout waits a little longer
// (ptoHoldTime, at most maxPTOHolds times in a row) because received
// datagrams wait in the socket: on a loaded host the timer's goroutine can
// run before the receive path has read an ACK that arrived in time, and
// the ACK should win. It costs a system call only when a timeout is due.
func (r *recovery) holdPTO(now time.Time) bool {
	if r.rx == nil || r.ptoHolds >= maxPTOHolds || !r.rx.Pending() {
		return false
	}
	r.ptoHolds++
	r.ptoHeld = now.Add(ptoHoldTime)
	r.stats.inc(CounterPTOHolds)
	return true
}

// stalled is when the packets now unacknowledged began to go without an
// acknowledgement: the send time of the oldest packet of the first of the
// consecutive probe timeouts; zero when none has fired since the last ACK
// that acknowledged something.
func (r *recovery) stalled() time.Time {
	if r.ptoCount == 0 {
		return time.Time{}
	}
	return r.stalledSince
}

// nextDeadline is when onTimeout must run next (zero: no deadline).
func (r *recovery) nextDeadline() time.Time {
	next := r.lossTime
	if r.sent.oldest() != nil {
		if t := r.ptoDeadline(); next.IsZero() || t.Before(next) {
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
	if p == nil || now.Before(r.ptoDeadline()) {
		return false
	}
	if p.ctl&ctlProbe == 0 && r.holdPTO(now) {
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
	r.openEpisode() // before the back-off, which an undo takes back
	if r.ptoCount == 0 {
		r.stalledSince = p.sentAt
	}
	r.ptoCount++
	r.ptoHolds = 0
	r.stats.inc(CounterRTOs)
	r.lose(p, now, false, h)
	r.sent.popDone()
	r.probes = 2
	r.lastEliciting = now
	if r.ptoCount >= persistentPTOs {
		r.cc.OnPersistentCongestion()
		r.countEvents()
	}
	return true
}

// countEvents adds the controller's new window reductions to
// CounterCongestionEvents.
func (r *recovery) countEvents() {
	if r.ec == nil {
		return
	}
	if n := r.ec.congestionEvents(); n != r.events {
		r.stats.add(CounterCongestionEvents, n-r.events)
		r.events = n
	}
}

// lingerTime is how long a closing session stays to repeat its CLOSE: a few
// RTOs, at most 1 s.
func (r *recovery) lingerTime() time.Duration {
	if !r.rtt.hasSample {
		return 100 * time.Millisecond
	}
	return min(3*r.rtt.rto(r.minRTO, r.peerAckDelay), time.Second)
}
