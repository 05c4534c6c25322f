package reliable

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/raptormq/raptor/wire"
)

const maxSendBatch = 32 // datagrams built per run-loop pass (one WriteBatch)

// run is the session's goroutine: it builds and sends packets and keeps the
// session's one timer armed at the earliest deadline.
func (s *Session) run() {
	defer s.timer.Stop()
	for {
		now := time.Now()
		s.mu.Lock()
		s.onTimersLocked(now)
		n, more, owner := 0, false, false
		if !s.sending {
			s.sending, owner = true, true
			n, more = s.packLocked(now, true)
		} else {
			// A Write is sending inline; it wakes us when it is done.
			s.sendWanted = true
		}
		finished := s.state == stateClosing && !s.closeQueued && !now.Before(s.drainUntil) && !s.sending
		if owner && n == 0 {
			s.sending = false
			finished = s.state == stateClosing && !s.closeQueued && !now.Before(s.drainUntil)
		}
		if finished {
			s.state = stateClosed
		}
		s.rearmLocked(now)
		s.mu.Unlock()
		if n > 0 {
			s.flush(n)
			s.mu.Lock()
			s.sending = false
			if s.closeSentPending {
				s.closeSentPending = false
				closeOnce(s.closeSent)
			}
			s.mu.Unlock()
		}
		if finished {
			s.ep.sessionDone(s)
			return
		}
		if more || n > 0 {
			continue // look again: more may have been queued while we wrote
		}
		select {
		case <-s.wake:
			s.wakePending.Store(false)
		case <-s.timer.C:
		}
	}
}

// armLocked points the session timer at the earliest deadline. Called by the
// run loop (exact, may move the timer later) and by other goroutines after
// they changed state (only ever moves it earlier, so nobody needs to wake the
// run loop just to re-arm).
func (s *Session) armLocked(exact bool) {
	next := s.nextDeadlineLocked()
	switch {
	case next.IsZero():
		if exact {
			s.timer.Stop()
			s.armed = time.Time{}
		}
	case exact || s.armed.IsZero() || next.Before(s.armed):
		s.timer.Reset(time.Until(next))
		s.armed = next
	}
}

// rearmLocked points the timer at the earliest deadline from the run loop,
// except while Writes send inline: then it fires no later than one ACK delay
// from now, whether or not an ACK is pending. The timer of a request/response
// exchange keeps that cadence anyway (each inline send arms it for its
// reply's ACK, armAtLocked), and a timer that the next send need not move
// earlier costs no Reset there, which may wake a second thread of the
// runtime (wakeNetPoller). Once inline sends stop for an ACK delay it fires
// once more and goes back to the exact deadline.
func (s *Session) rearmLocked(now time.Time) {
	if tick := now.Add(s.cfg.MaxAckDelay); !s.inlineAt.IsZero() && now.Sub(s.inlineAt) < s.cfg.MaxAckDelay && s.state == stateEstablished {
		if next := s.nextDeadlineLocked(); next.IsZero() || tick.Before(next) {
			s.timer.Reset(time.Until(tick))
			s.armed = tick
			return
		}
	}
	s.armLocked(true)
}

// armAtLocked makes the timer fire no later than t (and no later than the
// next deadline).
func (s *Session) armAtLocked(t time.Time) {
	next := s.nextDeadlineLocked()
	if next.IsZero() || t.Before(next) {
		next = t
	}
	if s.armed.IsZero() || next.Before(s.armed) {
		s.timer.Reset(time.Until(next))
		s.armed = next
	}
}

// inlineInFlightDatagrams bounds what may be in flight, in base-size
// datagrams, for a Write to send from its own goroutine. A session carrying
// several request/response streams at once (a Kafka client's produce and
// fetch connections share one) nearly always has a small reply or request
// not yet acknowledged, since ACKs wait for a packet to ride on; a bulk
// sender has a window's worth in flight and leaves the sending to the run
// loop, which batches many writes into one system call.
const inlineInFlightDatagrams = 2

// inlineRounds bounds how many times one inline sender packs and sends:
// what other streams queued while it wrote goes too (their writers left it
// to the sender in progress), then the run loop takes over.
const inlineRounds = 4

// inlineOKLocked reports whether a Write may send from its own goroutine:
// the session is quiet (at most inlineInFlightDatagrams in flight) and no
// FlushDelay asks writes to wait for company.
func (s *Session) inlineOKLocked() bool {
	return s.rec.inFlight <= inlineInFlightDatagrams*s.cfg.MaxDatagramSize && s.state == stateEstablished && s.cfg.FlushDelay == 0
}

// sendInline sends from the calling goroutine instead of handing over to the
// run loop, when the session is quiet (see inlineOKLocked): a
// request/response exchange then costs no goroutine switch. When another
// goroutine is sending (the run loop or another Write) it leaves the new
// data to that sender, which looks again when its datagrams are out. It is
// called with s.mu held and returns with it released.
func (s *Session) sendInlineUnlock(now time.Time) {
	if s.sending {
		s.mu.Unlock()
		return
	}
	if !s.inlineOKLocked() {
		s.mu.Unlock()
		s.wakeSender()
		return
	}
	s.sending = true
	if now.IsZero() {
		now = time.Now() // the caller (Write, the API's edge) had no need of it before
	}
	for round := 1; ; round++ {
		n, more := s.packLocked(now, false)
		s.inlineSent += uint64(n)
		// Arm the timer for the reply's ACK deadline now, while it costs
		// nothing: moving a timer earlier later, from the receive loop,
		// interrupts the runtime's network poller (a system call and a
		// thread wake-up per reply).
		s.armAtLocked(now.Add(s.cfg.MaxAckDelay))
		s.inlineAt = now
		s.mu.Unlock()
		if n > 0 {
			s.flush(n)
		}
		s.mu.Lock()
		work := more || s.hasWorkLocked()
		if work && n > 0 && round < inlineRounds && !s.sendWanted && s.inlineOKLocked() {
			now = time.Now()
			continue // written meanwhile by another stream: it goes too
		}
		s.sending = false
		wake := work || s.sendWanted // the run loop waits for us to finish
		s.sendWanted = false
		s.mu.Unlock()
		if wake {
			s.wakeSender()
		}
		return
	}
}

func closeOnce(c chan struct{}) {
	if !closedChan(c) {
		close(c)
	}
}

// flush sends the n datagrams built by packLocked and recycles their buffers.
func (s *Session) flush(n int) {
	sent, err := s.writeBatch(s.outBufs[:n], s.outAddrs[:n])
	if err != nil && sent < n {
		s.ep.sendErrors.Add(1)
		if s.ep.cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
			s.ep.cfg.Logger.Debug("raptor: send failed; loss recovery will resend", "peer", s.peer, "err", err)
		}
	}
	for i := 0; i < n; i++ {
		s.ep.putOut(s.outPool[i])
		s.outBufs[i] = nil
	}
	s.outBufs, s.outAddrs, s.outPool = s.outBufs[:0], s.outAddrs[:0], s.outPool[:0]
}

// onTimersLocked runs every deadline that has passed.
func (s *Session) onTimersLocked(now time.Time) {
	switch s.state {
	case stateHandshake:
		if !now.Before(s.hsDeadline) {
			s.closeLocked(&HandshakeTimeoutError{Remote: s.peer.String(), After: s.cfg.HandshakeTimeout}, false, now)
		}
		return
	case stateEstablished:
	default:
		return
	}
	if idle := now.Sub(s.lastRecv); idle >= s.idleLimitLocked() {
		s.closeLocked(&SessionError{Code: CodeIdleTimeout, Reason: fmt.Sprintf("no packet from %s for %v", s.peer, idle.Round(time.Millisecond))}, false, now)
		return
	}
	if since := s.rec.stalled(); !since.IsZero() && now.Sub(since) >= s.idleLimitLocked() {
		// A peer that keeps the session alive (any packet will do) but
		// acknowledges nothing would hold the buffers of what it was sent,
		// charged to Config.MaxMemory, for ever.
		s.closeLocked(&SessionError{Code: CodeIdleTimeout, Reason: fmt.Sprintf("%s acknowledged nothing for %v (%d probe timeouts in a row, %d bytes in flight)",
			s.peer, now.Sub(since).Round(time.Millisecond), s.rec.ptoCount, s.rec.inFlight)}, false, now)
		s.stats.inc(CounterLimitUnacknowledged)
		return
	}
	if s.graceful && s.allAckedLocked() {
		s.closeLocked(&SessionError{Code: CodeNoError, Reason: "session closed"}, true, now)
		return
	}
	s.rcv.onTimer(now)
	s.pmtu.onTimer(now)
	if s.rec.onTimeout(now, s) && len(s.sendQueue) == s.sendQueueHead {
		// Probe timeout with nothing to resend: a PING asks for an ACK.
		s.pingQueued = true
	}
	if ka := s.cfg.KeepAlive; ka > 0 && len(s.streams) > 0 && now.Sub(s.lastRecv) >= ka && now.Sub(s.lastSent) >= ka {
		s.pingQueued = true
	}
}

// allAckedLocked reports whether every byte written has been acknowledged.
func (s *Session) allAckedLocked() bool {
	for _, st := range s.streams {
		if st.resetQueued {
			if !st.resetAcked {
				return false
			}
			continue
		}
		if st.sendBase != st.writeOff || st.needOpen || (st.finQueued && !st.finAcked) {
			return false
		}
	}
	return true
}

// hasWorkLocked reports whether packLocked would send something now.
func (s *Session) hasWorkLocked() bool {
	return s.sendQueueHead < len(s.sendQueue) || s.rcv.wantsToSend() || s.maxDataQueued ||
		s.maxStreamsQueued || s.pingQueued || s.prot.postQueued || s.closeQueued || s.graceful || s.state != stateEstablished
}

// nextDeadlineLocked is the earliest time the run loop must act by itself.
func (s *Session) nextDeadlineLocked() time.Time {
	var next time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	switch s.state {
	case stateHandshake:
		at(s.hsNext)
		at(s.hsDeadline)
		return next
	case stateClosing:
		at(s.drainUntil)
		return next
	case stateClosed:
		return next
	}
	at(s.lastRecv.Add(s.idleLimitLocked()))
	if since := s.rec.stalled(); !since.IsZero() {
		at(since.Add(s.idleLimitLocked()))
	}
	at(s.rcv.deadline())
	at(s.rec.nextDeadline())
	if ka := s.cfg.KeepAlive; ka > 0 && len(s.streams) > 0 {
		at(maxTime(s.lastRecv, s.lastSent).Add(ka))
	}
	at(s.pacingAt)
	at(s.flushAt)
	at(s.pmtu.deadline())
	return next
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// newOut takes a pooled buffer for the next datagram, of the base size.
func (s *Session) newOut() ([]byte, *[]byte) { return s.newOutSized(s.cfg.MaxDatagramSize) }

// newOutSized takes a pooled buffer for a datagram of up to size bytes.
func (s *Session) newOutSized(size int) ([]byte, *[]byte) {
	bp := s.ep.getOut(size)
	return (*bp)[:0], bp
}

func (s *Session) queueOut(b []byte, bp *[]byte) {
	if s.tail.ring != nil {
		b = s.sealTailLocked(b)
	} else {
		b = s.sealOutLocked(b)
	}
	*bp = b[:0]
	s.outBufs = append(s.outBufs, b)
	s.outAddrs = append(s.outAddrs, s.peer)
	s.outPool = append(s.outPool, bp)
	s.stats.inc(CounterPacketsSent)
	s.stats.add(CounterBytesSent, uint64(len(b)))
}

// packLocked builds the datagrams to send now (at most maxSendBatch) and
// reports whether more are waiting. With probe, a datagram size probe that
// is due goes last (the run loop; an inline send leaves it to the run loop).
func (s *Session) packLocked(now time.Time, probe bool) (int, bool) {
	switch s.state {
	case stateHandshake:
		return s.packHandshakeLocked(now), false
	case stateClosing:
		if s.closeQueued {
			s.closeQueued = false
			if s.remoteID == (wire.ConnID{}) || !s.canSendShortLocked() {
				return s.packHandshakeCloseLocked(), false
			}
			b, bp := s.newOut()
			hdr := wire.ShortHeader{DstID: s.remoteID, PacketNumber: s.rec.takePacketNumber()}
			b = hdr.Append(b)
			cf := wire.CloseFrame{ErrorCode: uint64(s.closeCode), Reason: []byte(s.closeReason)}
			b, _ = cf.Append(b)
			s.queueOut(b, bp)
			s.closeSentPending = true
			return 1, false
		}
		return 0, false
	case stateClosed:
		return 0, false
	}
	if !s.pmtu.active() && s.canSendShortLocked() {
		s.startDiscoveryLocked()
	}
	s.rec.refillPacer(now)
	s.pacingAt, s.flushAt = time.Time{}, time.Time{}
	n := s.packHandshakeLocked(now) // the client's Finished until the server confirms
	// A due datagram size probe has its room in the congestion window kept
	// while the data packets are built; it goes last (packProbeLocked).
	reserve, last := 0, maxSendBatch
	if probe {
		reserve = s.probeDueLocked(now)
	}
	if reserve > 0 {
		last--
		s.rec.inFlight += reserve
	}
	for n < last {
		if !s.packOneLocked(now) {
			break
		}
		n++
	}
	s.rec.inFlight -= reserve
	if reserve > 0 && s.packProbeLocked(now) {
		n++
	}
	return n, n == maxSendBatch
}

// packOneLocked builds one datagram if there is anything worth sending.
func (s *Session) packOneLocked(now time.Time) bool {
	limit := s.maxPacket()
	if base := s.pmtu.basePayload(); s.pmtu.active() && limit > base && !s.rec.canSend(limit) {
		// A datagram of the discovered size does not fit the congestion
		// window: fill what does, down to the base size.
		limit = max(base, s.rec.window()-s.rec.inFlight)
	}
	b, bp := s.newOutSized(limit + s.sealOverhead())
	pn := s.rec.peekPacketNumber()
	hdr := wire.ShortHeader{DstID: s.remoteID, PacketNumber: pn}
	b = hdr.Append(b)
	rec := &s.pending
	*rec = sentPacket{pn: pn, sentAt: now}
	hasAck, hasNak, eliciting, hasData := false, false, false, false

	if s.rcv.ackPending {
		s.rcv.fillAck(&s.ackFrame, now)
		if nb, err := s.ackFrame.Append(b); err == nil {
			b, hasAck = nb, true
		}
	}
	if len(s.rcv.naks) > 0 {
		s.nakFrame.Ranges = s.rcv.naks
		if nb, err := s.nakFrame.Append(b); err == nil && len(nb) <= limit {
			b, hasNak = nb, true
		}
	}
	if s.maxDataQueued {
		f := wire.MaxDataFrame{Max: s.recvMaxData}
		b, _ = f.Append(b)
		rec.ctl |= ctlMaxData
		eliciting = true
	}
	if s.maxStreamsQueued {
		f := wire.MaxStreamsFrame{Max: s.maxPeerStreams}
		b, _ = f.Append(b)
		rec.ctl |= ctlMaxStreams
		eliciting = true
	}
	if s.pingQueued {
		f := wire.PingFrame{}
		b, _ = f.Append(b)
		rec.ctl |= ctlPing
		eliciting = true
	}
	if nb, ok := s.appendPostHandshakeLocked(b, limit, rec); ok {
		b, eliciting = nb, true
	}
	congOK := s.rec.canSend(limit)
	paceOK := true
	if congOK {
		if d := s.rec.pacingDelay(limit); d > 0 {
			paceOK = false
			s.pacingAt = now.Add(d)
		}
	}
	if congOK && paceOK {
		// Round-robin over streams with work; a stream that still has work and
		// was stopped by the packet's room goes to the back of the queue.
		requeue := s.requeue[:0]
		for s.sendQueueHead < len(s.sendQueue) && rec.nchunks < maxChunksPerPacket && limit-len(b) > 24 {
			st := s.sendQueue[s.sendQueueHead]
			s.sendQueue[s.sendQueueHead] = nil
			s.sendQueueHead++
			st.inSendQueue = false
			var data, full bool
			b, data, full = s.packStreamLocked(st, b, limit, rec, now)
			if data {
				hasData = true
			}
			if rec.nchunks > 0 {
				eliciting = true
			}
			if st.hasSendWorkLocked() && !st.removed {
				if !s.blockedLocked(st) {
					requeue = append(requeue, st)
					if full {
						break
					}
				} else if s.sentData >= s.peerMaxData && !st.dataBlocked {
					st.dataBlocked = true // requeued by the next MAX_DATA
					s.dataBlocked = append(s.dataBlocked, st)
				}
			}
		}
		if s.sendQueueHead == len(s.sendQueue) {
			s.sendQueue, s.sendQueueHead = s.sendQueue[:0], 0
		}
		for i, st := range requeue {
			s.enqueueLocked(st)
			requeue[i] = nil
		}
		s.requeue = requeue[:0]
	}
	if !eliciting && !hasNak && !(hasAck && s.rcv.ackNow) {
		s.tail = packetTail{}
		s.ep.putOut(bp)
		return false
	}
	// Commit: the packet goes out.
	s.rec.takePacketNumber()
	s.lastSent = now
	if !eliciting {
		s.ackOnlySent++
	}
	if hasAck {
		s.rcv.onAckSent()
		s.stats.inc(CounterAcksSent)
	}
	if hasNak {
		s.rcv.onNakSent()
		s.stats.inc(CounterNaksSent)
	}
	s.maxDataQueued, s.maxStreamsQueued, s.pingQueued = false, false, false
	if eliciting {
		rec.size = len(b)
		if hasAck {
			rec.ctl |= ctlAck
			rec.ackLargest = s.ackFrame.Ranges[0].Largest
		}
		s.rec.onPacketSent(rec, now, hasData)
	}
	s.stats.cwnd.Store(int64(s.rec.window()))
	s.stats.inflight.Store(int64(s.rec.inFlight))
	s.stats.srtt.Store(int64(s.rec.rtt.SmoothedRTT()))
	s.queueOut(b, bp)
	return true
}

// blockedLocked reports whether st's only work is new data that flow control
// holds back (it is requeued when the window opens).
func (s *Session) blockedLocked(st *Stream) bool {
	if st.resetQueued || st.maxDataQueued || st.stopQueued || st.needOpen || !st.retx.empty() {
		return false
	}
	if st.finQueued && !st.finSent && st.sendNext == st.writeOff {
		return false
	}
	return st.sendNext >= st.peerMax || s.sentData >= s.peerMaxData
}

// packStreamLocked appends st's pending frames to b. It reports whether stream
// data went in and whether the packet is full.
func (s *Session) packStreamLocked(st *Stream, b []byte, limit int, rec *sentPacket, now time.Time) ([]byte, bool, bool) {
	add := func(c chunk) bool {
		rec.chunks[rec.nchunks] = c
		rec.nchunks++
		return int(rec.nchunks) == maxChunksPerPacket
	}
	if st.resetQueued && !st.resetSent {
		f := wire.ResetStreamFrame{StreamID: st.id, ErrorCode: uint64(st.resetCode), FinalSize: st.sendNext}
		if len(b)+f.Length() > limit {
			return b, false, true
		}
		b, _ = f.Append(b)
		st.resetSent = true
		if add(chunk{stream: st.id, kind: chunkReset}) {
			return b, false, true
		}
	}
	if st.stopQueued {
		f := wire.StopSendingFrame{StreamID: st.id, ErrorCode: uint64(st.stopCode)}
		if len(b)+f.Length() > limit {
			return b, false, true
		}
		b, _ = f.Append(b)
		st.stopQueued = false
		if add(chunk{stream: st.id, kind: chunkStop}) {
			return b, false, true
		}
	}
	if st.maxDataQueued {
		f := wire.MaxStreamDataFrame{StreamID: st.id, Max: st.recvMax}
		if len(b)+f.Length() > limit {
			return b, false, true
		}
		b, _ = f.Append(b)
		st.maxDataQueued = false
		if add(chunk{stream: st.id, kind: chunkMSD}) {
			return b, false, true
		}
	}
	if st.resetQueued {
		st.maybeRemoveLocked()
		return b, false, false
	}
	data := false
	// Retransmissions first: they hold up the receiver.
	for !st.retx.empty() {
		sp, _ := st.retx.first()
		f := wire.StreamFrame{StreamID: st.id, Offset: sp.lo, HasLen: true}
		room := streamDataRoom(limit-len(b), &f)
		if room <= 0 {
			return b, data, true
		}
		f.Data = st.sendSpan(sp.lo, min(sp.hi-sp.lo, uint64(room))) // up to where the ring wraps: the rest goes next
		n := uint64(len(f.Data))
		f.Fin = st.finQueued && sp.lo+n == st.writeOff && st.writeOff == st.sendNext
		b = s.appendDataLocked(b, &f, st)
		st.retx.remove(sp.lo, sp.lo+n)
		if f.Fin {
			st.finSent = true
		}
		data = true
		if add(chunk{stream: st.id, off: sp.lo, n: uint32(n), fin: f.Fin}) {
			return b, data, true
		}
	}
	// New data, within both flow-control windows: one frame, or two where
	// the data wraps around the end of the stream's send ring.
	for first := true; ; first = false {
		avail := st.writeOff - st.sendNext
		credit := min(st.peerMax-min(st.peerMax, st.sendNext), s.peerMaxData-min(s.peerMaxData, s.sentData))
		n := min(avail, credit)
		if first && n > 0 && s.cfg.FlushDelay > 0 && !st.finQueued {
			// Hold a small write back briefly so that more can join it.
			if n < uint64(limit-len(b)-32) && now.Sub(st.pendingSince) < s.cfg.FlushDelay {
				s.flushAt = st.pendingSince.Add(s.cfg.FlushDelay)
				return b, data, false
			}
		}
		finNow := st.finQueued && !st.finSent && st.sendNext+n == st.writeOff
		if n == 0 && (!first || !st.needOpen) && !finNow {
			return b, data, false
		}
		f := wire.StreamFrame{StreamID: st.id, Offset: st.sendNext, HasLen: true}
		room := streamDataRoom(limit-len(b), &f)
		if room < 0 || (room == 0 && n > 0) {
			return b, data, true
		}
		full := false
		if n > uint64(room) {
			n, full, finNow = uint64(room), true, false
		}
		f.Data = st.sendSpan(st.sendNext, n)
		wrapped := uint64(len(f.Data)) < n
		if wrapped {
			n, full, finNow = uint64(len(f.Data)), false, false
		}
		f.Fin = finNow
		b = s.appendDataLocked(b, &f, st)
		c := chunk{stream: st.id, off: st.sendNext, n: uint32(n), fin: finNow}
		st.sendNext += n
		s.sentData += n
		s.stats.add(CounterStreamBytesSent, n)
		st.needOpen = false
		if finNow {
			st.finSent = true
		}
		data = true
		if add(c) || full {
			return b, true, true
		}
		if !wrapped {
			return b, true, false
		}
	}
}

// idleLimitLocked is the idle timeout in force: the negotiated one, but never
// less than three probe timeouts (RFC 9000 §10.1), so that a very short
// timeout cannot end a session whose peer is merely slower than it.
func (s *Session) idleLimitLocked() time.Duration {
	return max(s.idleTimeout, 3*s.rec.pto())
}

// streamDataRoom is how many data bytes a STREAM frame f (its Data not yet
// set, with an explicit length) can carry in space bytes: the header, a
// length varint as long as that many bytes need, and the data. Negative when
// not even the header fits.
func streamDataRoom(space int, f *wire.StreamFrame) int {
	d := space - (f.HeaderLen() - 1) // the header without its length field
	best := d - 1
	for _, v := range [...]struct{ l, max int }{{1, 63}, {2, 16383}, {4, 1<<30 - 1}, {8, 1<<62 - 1}} {
		if d-v.l > v.max {
			best = v.max // this length field is too short for the rest; a longer one may do better
			continue
		}
		return max(best, d-v.l)
	}
	return best
}

// packetTail is a STREAM frame's data that ends the packet being built and
// is not copied into it: it is still in the stream's send ring, at
// ring[pos:pos+n], and goes to the packet's bytes [at, at+n).
type packetTail struct {
	ring    []byte
	at, pos int
	n       int
}

// tailPrefix bounds the frames before a packet's tail (header excluded)
// that sealTailLocked puts in front of the tail in the ring; a packet with
// more (a long ACK frame) is copied and sealed in place.
const tailPrefix = 256

// appendDataLocked appends STREAM frame f, whose data is held in st's send
// ring. With packet protection the data is not copied: its room is
// reserved and it becomes the packet's tail, which queueOut seals straight
// from the ring (sealTailLocked) if nothing follows it. A tail that another
// data frame follows is copied in first.
func (s *Session) appendDataLocked(b []byte, f *wire.StreamFrame, st *Stream) []byte {
	s.fillTailLocked(b)
	if s.prot.keys == nil || len(f.Data) == 0 {
		b, _ = f.Append(b)
		return b
	}
	b, err := f.AppendHeader(b)
	if err != nil {
		return b
	}
	s.tail = packetTail{ring: st.sendBuf, at: len(b), pos: ringPos(st.sendBuf, f.Offset-st.sendRing), n: len(f.Data)}
	return b[:len(b)+len(f.Data)]
}

// fillTailLocked copies the packet's tail, if any, into packet b.
func (s *Session) fillTailLocked(b []byte) {
	if t := &s.tail; t.ring != nil {
		copy(b[t.at:t.at+t.n], t.ring[t.pos:t.pos+t.n])
		*t = packetTail{}
	}
}

// sealTailLocked seals short-header packet b, which ends with its tail,
// reading the tail from the stream's send ring: the AEAD encrypts the bytes
// from where Write put them into the packet, so they are not copied first.
// The AEAD takes one contiguous plaintext, so the packet's frames before
// the tail are put in front of it in the ring for the call, in place of
// ring bytes that are saved and put back right after (all under
// Session.mu, which every use of the ring holds). A packet whose frames do
// not fit in front (the tail at the ring's start, a long ACK) or that ends
// otherwise is copied and sealed in place.
func (s *Session) sealTailLocked(b []byte) []byte {
	t := s.tail
	pn, l := wire.ReadVarint(b[wire.ShortPNOffset:])
	hdrLen := wire.ShortPNOffset + l
	k := t.at - hdrLen // bytes of frames before the tail
	if l == 0 || t.at+t.n != len(b) || k < 0 || k > t.pos || k > len(s.tailSave) ||
		len(b)-wire.ShortPNOffset < minProtectedPayload || cap(b)-len(b) < aeadTagLen {
		s.fillTailLocked(b)
		return s.sealOutLocked(b)
	}
	s.tail = packetTail{}
	pt := t.ring[t.pos-k : t.pos+t.n]
	save := s.tailSave[:k]
	copy(save, pt[:k])
	copy(pt[:k], b[hdrLen:t.at])
	out := s.prot.keys.sealShortFrom(b[:hdrLen], pt, pn)
	copy(pt[:k], save)
	s.sealedFromRing++
	return out
}
