package reliable

import (
	"time"

	"github.com/raptormq/raptor/wire"
)

const maxRecvRanges = 64 // packet-number ranges remembered for ACKs and duplicates

// receivedTracker is the receiving half of loss recovery: which packet
// numbers arrived (for ACK frames and duplicate detection), which are
// missing (for immediate NAKs, docs/PROTOCOL.md §8), and when an ACK is due:
// at once after a gap or a filled gap, after two or more ack-eliciting
// packets that carried ackBytes or more between them (bulk data: about every
// second full-sized datagram, as TCP acknowledges every second full-sized
// segment), or after ackEveryPackets ack-eliciting packets of any size, else
// within max_ack_delay. Small packets (requests, replies) so
// leave their ACK to ride on the next packet the other way instead of
// costing a datagram of its own. Every method takes now; it reads no clock.
type receivedTracker struct {
	maxAckDelay time.Duration // ours, Config.MaxAckDelay
	// ackBytes is how many bytes two or more ack-eliciting packets must
	// carry to be acknowledged at once: one base-size datagram (two full
	// ones surely do, two small requests do not). Zero: any two packets are.
	ackBytes int

	recvd          rangeSet // packet numbers received (a window of them)
	horizon        uint64   // packet numbers below were forgotten
	ackFloor       uint64   // the peer has seen ACKs of all received below (fillAck)
	largest        uint64
	largestAt      time.Time
	any            bool
	ackPending     bool // something to acknowledge
	ackNow         bool
	ackDeadline    time.Time
	elicitingSince int // ack-eliciting packets since the last ACK sent
	elicitingBytes int // and their size
	naks           []wire.AckRange
}

// ackEveryPackets is how many ack-eliciting packets, however small, are
// acknowledged at once, so that a sender of many small packets still sees
// its window open about every round trip.
const ackEveryPackets = 8

// isDuplicate reports whether pn arrived before (or is too old to tell).
func (t *receivedTracker) isDuplicate(pn uint64) bool {
	return pn < t.horizon || t.recvd.contains(pn, pn+1)
}

// onDuplicate notes a duplicate: if it asked for an ACK, ours may have been
// lost, so one goes at once.
func (t *receivedTracker) onDuplicate(eliciting bool) {
	if eliciting {
		t.ackNow, t.ackPending = true, true
	}
}

// onPacket records a new packet number (not a duplicate) of size bytes.
func (t *receivedTracker) onPacket(pn uint64, eliciting bool, size int, now time.Time) {
	if t.any && pn > t.largest+1 {
		// A gap: ask for the missing packets at once.
		t.addNak(t.largest+1, pn-1)
		t.ackNow = true
	} else if t.any && pn < t.largest {
		t.ackNow = true // fills a gap: tell the sender quickly
	}
	if !t.any && pn > 0 {
		t.naks = append(t.naks[:0], wire.AckRange{Smallest: 0, Largest: pn - 1})
		t.ackNow = true
	}
	t.recvd.add(pn, pn+1)
	if pn < t.ackFloor {
		t.ackFloor = pn // the peer must hear of it (a late packet it may have declared lost)
	}
	if len(t.recvd.s) > maxRecvRanges {
		t.horizon = t.recvd.s[0].hi
		t.recvd.s = append(t.recvd.s[:0], t.recvd.s[1:]...)
	}
	if !t.any || pn > t.largest {
		t.largest, t.largestAt, t.any = pn, now, true
	}
	t.ackPending = true
	if eliciting {
		t.elicitingSince++
		t.elicitingBytes += size
		if t.elicitingSince >= ackEveryPackets || (t.elicitingSince >= 2 && t.elicitingBytes >= t.ackBytes) {
			t.ackNow = true
		} else if t.ackDeadline.IsZero() {
			t.ackDeadline = now.Add(t.maxAckDelay)
		}
	}
}

// addNak queues [lo, hi] for the next NAK frame, forgetting the oldest
// range when the frame is full.
func (t *receivedTracker) addNak(lo, hi uint64) {
	if len(t.naks) == wire.MaxNakRanges {
		copy(t.naks, t.naks[1:])
		t.naks = t.naks[:len(t.naks)-1]
	}
	t.naks = append(t.naks, wire.AckRange{Smallest: lo, Largest: hi})
}

// onTimer makes a pending ACK due once its deadline passed.
func (t *receivedTracker) onTimer(now time.Time) {
	if !t.ackDeadline.IsZero() && !now.Before(t.ackDeadline) {
		t.ackNow = true
	}
}

// deadline is when a delayed ACK must go (zero: none pending).
func (t *receivedTracker) deadline() time.Time {
	if !t.ackPending {
		return time.Time{}
	}
	return t.ackDeadline
}

// fillAck sets f to the ranges received, newest first, and the ACK delay:
// the newest range always, older ones while they reach ackFloor. The peer has
// seen an ACK of every packet number received below ackFloor (it
// acknowledged a packet that carried one, onAckAcked), so repeating those
// ranges in every ACK frame would only cost both sides (RFC 9000 §13.2.4);
// a packet that arrives late below it lowers it again (onPacket).
func (t *receivedTracker) fillAck(f *wire.AckFrame, now time.Time) {
	f.Ranges = f.Ranges[:0]
	for i := len(t.recvd.s) - 1; i >= 0 && len(f.Ranges) < wire.MaxAckRanges; i-- {
		r := t.recvd.s[i]
		if r.hi <= t.ackFloor && len(f.Ranges) > 0 {
			break
		}
		f.Ranges = append(f.Ranges, wire.AckRange{Smallest: r.lo, Largest: r.hi - 1})
	}
	f.AckDelay = uint64(max(0, now.Sub(t.largestAt)) / time.Microsecond)
}

// onAckAcked: the peer acknowledged a packet that carried an ACK frame whose
// largest acknowledged was largest, so it knows of every packet number
// received up to there.
func (t *receivedTracker) onAckAcked(largest uint64) {
	t.ackFloor = max(t.ackFloor, largest+1)
}

// onAckSent: the pending ACK went out.
func (t *receivedTracker) onAckSent() {
	t.ackPending, t.ackNow, t.ackDeadline, t.elicitingSince, t.elicitingBytes = false, false, time.Time{}, 0, 0
}

// onNakSent: the queued NAK ranges went out.
func (t *receivedTracker) onNakSent() { t.naks = t.naks[:0] }

// wantsToSend reports whether an ACK or NAK should go now.
func (t *receivedTracker) wantsToSend() bool { return t.ackNow || len(t.naks) > 0 }
