package reliable

import (
	"context"
	"log/slog"
	"time"

	"github.com/raptormq/raptor/wire"
)

// Datagram size discovery (docs/PROTOCOL.md §8.12): DPLPMTUD after RFC 8899,
// as RFC 9000 §14.3 applies it. A session starts at the base size (the
// smaller of Config.MaxDatagramSize and the peer's max_datagram_size), which
// every path is assumed to carry, and probes larger sizes with PING packets
// padded to the size. A probe is ack-eliciting; its acknowledgement confirms
// the size and the packetizer moves up to it; its loss is no congestion signal
// and nothing in it is sent again. Up to probeMaxTries probes of one size go,
// a fraction of the RTT apart (so that one burst of loss does not take them
// all), without waiting for the fate of the earlier ones: one acknowledged
// confirms the size, all of them lost make it too big. The search bisects
// between the largest confirmed size and the smallest failed one until they
// are probeResolution apart, then rests for probeRaiseInterval and searches
// again from the ceiling, in case the path grew. A black hole (the path stops
// carrying the confirmed size: blackHoleLosses packets larger than the base
// lost, none of them acknowledged since) sends the session back to the base
// size and starts a new search below the size that failed.

const (
	// probeMaxTries is MAX_PROBES (RFC 8899 §5.1.2): losses of probes of
	// one size, none acknowledged, after which it counts as too big.
	probeMaxTries = 3
	// probeSpacingPerRTT: two probes of one size are at least the smoothed
	// RTT divided by this apart.
	probeSpacingPerRTT = 4
	// probeResolution ends the search: the confirmed size is within this
	// many bytes of the smallest size that failed.
	probeResolution = 64
	// probeRaiseInterval is PMTU_RAISE_TIMER (RFC 8899 §5.1.1): how long a
	// finished search rests before it probes larger sizes again.
	probeRaiseInterval = 10 * time.Minute
	// blackHoleLosses: packets larger than the base size lost with none of
	// them acknowledged since (nor after them) mean the path no longer
	// carries them (RFC 8899 §4.3).
	blackHoleLosses = 3
)

// sizeDiscovery is one session's datagram size search. Sizes are UDP
// payloads; packet records (sentPacket.size) count the bytes before sealing,
// overhead fewer. Every method takes what it needs; nothing reads the clock.
type sizeDiscovery struct {
	base     int           // start and fall-back size
	ceiling  int           // the largest size worth probing (<= base: discovery off)
	cur      int           // the confirmed size in use
	hi       int           // the smallest size known too big; ceiling+1 while none is
	overhead int           // what sealing adds to a packet
	rest     time.Duration // probeRaiseInterval (Config.probeRaiseAfter)

	due        bool      // a probe may be sent (the search goes on)
	raiseAt    time.Time // the resting search starts again then (zero: not resting)
	probeSize  int       // the size being probed (0: none chosen)
	probeFirst uint64    // packet number of its first probe: older probes are stale
	probeLast  time.Time // when its latest probe left
	sent, lost int       // its probes sent and lost

	bigLost  int    // losses of packets above the base since one was acknowledged
	bigAcked uint64 // largest packet number of an acknowledged packet above the base
}

// init starts discovery between base and ceiling; a finished search rests
// for rest.
func (d *sizeDiscovery) init(base, ceiling, overhead int, rest time.Duration) {
	*d = sizeDiscovery{base: base, ceiling: ceiling, cur: base, hi: ceiling + 1, overhead: overhead, rest: rest}
	d.due = ceiling > base
}

// active reports whether init ran.
func (d *sizeDiscovery) active() bool { return d.base > 0 }

// basePayload is the packet size, before sealing, of a base-size datagram.
func (d *sizeDiscovery) basePayload() int { return d.base - d.overhead }

// onTimer lets a resting search start again once its time has come.
func (d *sizeDiscovery) onTimer(now time.Time) {
	if !d.raiseAt.IsZero() && !now.Before(d.raiseAt) {
		d.raiseAt = time.Time{}
		d.hi = d.ceiling + 1
		d.due = d.ceiling > d.cur
	}
}

// deadline is when onTimer must run (zero: never).
func (d *sizeDiscovery) deadline() time.Time { return d.raiseAt }

// nextProbe returns the size to probe now, if any (srtt spaces the probes of
// one size); it ends the search, and arms the raise timer, when there is
// nothing left to try.
func (d *sizeDiscovery) nextProbe(now time.Time, srtt time.Duration) (int, bool) {
	if !d.due {
		return 0, false
	}
	if d.probeSize != 0 {
		// Probes of this size in flight: another after the spacing, up to
		// probeMaxTries.
		if d.sent >= probeMaxTries || now.Sub(d.probeLast) < srtt/probeSpacingPerRTT {
			return 0, false
		}
		return d.probeSize, true
	}
	size := d.ceiling
	if d.hi <= d.ceiling {
		size = d.cur + (d.hi-d.cur)/2
	}
	if d.hi-d.cur <= probeResolution || size <= d.cur {
		d.due = false
		if d.cur < d.ceiling {
			d.raiseAt = now.Add(d.rest)
		}
		return 0, false
	}
	return size, true
}

// onProbeSent records a probe of size bytes sent as packet pn at now.
func (d *sizeDiscovery) onProbeSent(pn uint64, size int, now time.Time) {
	if d.probeSize != size {
		d.probeSize, d.probeFirst, d.sent, d.lost = size, pn, 0, 0
	}
	d.sent++
	d.probeLast = now
}

// current reports whether probe p belongs to the size being probed.
func (d *sizeDiscovery) current(p *sentPacket) bool {
	return d.probeSize != 0 && p.pn >= d.probeFirst && p.size+d.overhead == d.probeSize
}

// onAcked is told of every acknowledged packet; it reports whether the
// confirmed size went up (the probe was acknowledged).
func (d *sizeDiscovery) onAcked(p *sentPacket) bool {
	if p.ctl&ctlProbe != 0 {
		if !d.current(p) {
			return false // a spare probe of a settled size, or of an earlier search
		}
		size := d.probeSize
		d.probeSize = 0
		if size <= d.cur {
			return false
		}
		d.cur = size
		return true
	}
	if p.size > d.basePayload() {
		d.bigLost = 0
		d.bigAcked = max(d.bigAcked, p.pn)
	}
	return false
}

// onLost is told of every packet declared lost; it reports whether that
// makes a black hole (the session is then back at the base size).
func (d *sizeDiscovery) onLost(p *sentPacket) bool {
	if p.ctl&ctlProbe != 0 {
		if d.current(p) {
			d.lost++
			if d.lost >= probeMaxTries {
				d.hi, d.probeSize = d.probeSize, 0
			}
		}
		return false
	}
	if d.cur <= d.base || p.size <= d.basePayload() || p.pn <= d.bigAcked {
		return false
	}
	d.bigLost++
	if d.bigLost < blackHoleLosses {
		return false
	}
	// The path stopped carrying d.cur: back to the base, search below it.
	d.hi = d.cur
	d.cur = d.base
	d.bigLost, d.probeSize = 0, 0
	d.raiseAt = time.Time{}
	d.due = true
	return true
}

// datagramSizeLocked is the largest datagram the session may send now: the
// discovered size once discovery runs, the base size before.
func (s *Session) datagramSizeLocked() int {
	if s.pmtu.active() {
		return s.pmtu.cur
	}
	return s.baseDatagramSizeLocked()
}

// baseDatagramSizeLocked is the smaller of Config.MaxDatagramSize and the
// peer's max_datagram_size.
func (s *Session) baseDatagramSizeLocked() int {
	m := s.cfg.MaxDatagramSize
	if p := int(s.peerParams.MaxDatagramSize); p > 0 && p < m {
		m = p
	}
	return m
}

// startDiscoveryLocked starts datagram size discovery once the session can
// send short-header packets (the peer's parameters and the keys are known).
func (s *Session) startDiscoveryLocked() {
	ceiling := s.cfg.MaxProbedDatagramSize
	if p := int(s.peerParams.MaxDatagramSize); p > 0 && p < ceiling {
		ceiling = p
	}
	base := s.baseDatagramSizeLocked()
	s.pmtu.init(base, max(ceiling, base), s.sealOverhead(), s.cfg.probeRaiseAfter)
	s.stats.dgram.Store(int64(base))
}

// probeDueLocked returns the size, before sealing, of the datagram size
// probe to send now, or 0. A probe takes at most half the congestion window
// (a window too small for it waits to grow): the packet builder keeps its
// room free, and data moves in the rest meanwhile.
func (s *Session) probeDueLocked(now time.Time) int {
	if !s.pmtu.active() || s.sentData == 0 || s.remoteID == (wire.ConnID{}) {
		return 0 // probe only for a session in use
	}
	size, ok := s.pmtu.nextProbe(now, s.rec.rtt.SmoothedRTT())
	if !ok || 2*size > s.rec.window() {
		return 0
	}
	return size - s.sealOverhead()
}

// packProbeLocked builds a datagram size probe if one is due: a PING padded
// to the size, ack-eliciting, metered by the congestion window but not paced.
// The run loop sends it last in its batch, so that a kernel that refuses the
// size (EMSGSIZE) costs nothing else.
func (s *Session) packProbeLocked(now time.Time) bool {
	n := s.probeDueLocked(now)
	if n == 0 || !s.rec.canSend(n) {
		return false // the window is full: an ACK brings the run loop back
	}
	size := n + s.sealOverhead()
	b, bp := s.newOutSized(size)
	pn := s.rec.takePacketNumber()
	hdr := wire.ShortHeader{DstID: s.remoteID, PacketNumber: pn}
	b = hdr.Append(b)
	f := wire.PingFrame{}
	b, _ = f.Append(b)
	b = append(b, make([]byte, n-len(b))...) // PADDING frames are zero bytes
	rec := &s.pending
	*rec = sentPacket{pn: pn, sentAt: now, size: len(b), ctl: ctlPing | ctlProbe}
	s.rec.onPacketSent(rec, now, false)
	s.pmtu.onProbeSent(pn, size, now)
	s.lastSent = now
	s.stats.inc(CounterProbesSent)
	s.queueOut(b, bp)
	return true
}

// onDiscoveryAckedLocked tells discovery of an acknowledged packet.
func (s *Session) onDiscoveryAckedLocked(p *sentPacket) {
	if !s.pmtu.active() {
		return
	}
	probe := p.ctl&ctlProbe != 0
	if s.pmtu.onAcked(p) {
		// A larger size is confirmed: let the pacer pass a datagram of it.
		s.rec.pacer.maxBurst = max(s.rec.pacer.maxBurst, 2*s.pmtu.cur)
		s.stats.dgram.Store(int64(s.pmtu.cur))
	}
	if probe {
		s.stats.inc(CounterProbesAcked)
	}
}

// onDiscoveryLostLocked tells discovery of a packet declared lost.
func (s *Session) onDiscoveryLostLocked(p *sentPacket) {
	if !s.pmtu.active() {
		return
	}
	if p.ctl&ctlProbe != 0 {
		s.stats.inc(CounterProbesLost)
	}
	if s.pmtu.onLost(p) {
		s.stats.inc(CounterBlackHoles)
		s.stats.dgram.Store(int64(s.pmtu.cur))
		if s.ep.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
			s.ep.cfg.Logger.Debug("raptor: path stopped carrying large datagrams; back to the base size", "peer", s.peer, "failed", s.pmtu.hi, "base", s.pmtu.base)
		}
	}
}
