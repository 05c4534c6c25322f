package reliable

import (
	"fmt"
	"time"

	"github.com/raptormq/raptor/wire"
)

const maxRecvRanges = 64 // packet-number ranges remembered for ACKs and duplicates

// handleShortLocked processes one short-header packet whose header h was
// parsed from the start of pkt. The read loop wakes the run loop after the
// batch if there is something to send (afterReceive).
func (s *Session) handleShortLocked(h wire.ShortHeader, hdrLen int, pkt []byte, now time.Time, fp *wire.FrameParser) {
	if s.state == stateClosed {
		s.ep.stats.inc(CounterDropsUnknownSession) // ended, about to leave the table
		return
	}
	payload := pkt[hdrLen:]
	// Validate every frame before acting on any: a malformed packet is dropped whole.
	eliciting := false
	for b := payload; len(b) > 0; {
		f, n, err := fp.ParseNext(b)
		if err != nil {
			s.stats.inc(CounterDropsMalformed)
			return
		}
		if f != nil {
			switch f.(type) {
			case *wire.AckFrame, *wire.NakFrame, *wire.CloseFrame:
			default:
				eliciting = true
			}
		}
		b = b[n:]
	}
	s.stats.inc(CounterPacketsReceived)
	s.stats.add(CounterBytesReceived, uint64(len(pkt)))
	if s.state == stateClosing {
		// Answer stragglers with CLOSE (a CLOSE from the peer ends lingering).
		if s.closeByUs {
			s.closeQueued = true
		}
		return
	}
	if s.state == stateHandshake {
		// Only a CLOSE is meaningful before Accept (a busy server says so).
		for b := payload; len(b) > 0; {
			f, n, _ := fp.ParseNext(b)
			if cf, ok := f.(*wire.CloseFrame); ok {
				s.closeLocked(&SessionError{Code: ErrorCode(cf.ErrorCode), Remote: true, Reason: string(cf.Reason)}, false)
				return
			}
			b = b[n:]
		}
		return
	}
	pn := h.PacketNumber
	if pn < s.recvHorizon || s.recvd.contains(pn, pn+1) {
		s.stats.inc(CounterDuplicates)
		if eliciting {
			s.ackNow, s.ackPending = true, true // our ACK may have been lost
		}
		return
	}
	s.lastRecv = now
	s.recordPacketLocked(pn, eliciting, now)
	for b := payload; len(b) > 0; {
		f, n, _ := fp.ParseNext(b)
		b = b[n:]
		if f == nil {
			continue
		}
		if err := s.handleFrameLocked(f, now); err != nil {
			s.closeLocked(err, true)
			return
		}
		if s.err != nil {
			return
		}
	}
}

// recordPacketLocked notes a new packet number for ACKs, NAKs and duplicates.
func (s *Session) recordPacketLocked(pn uint64, eliciting bool, now time.Time) {
	if s.anyRecv && pn > s.largestRecv+1 {
		// A gap: ask for the missing packets at once (docs/PROTOCOL.md §8).
		lo, hi := s.largestRecv+1, pn-1
		if len(s.naks) == wire.MaxNakRanges {
			copy(s.naks, s.naks[1:])
			s.naks = s.naks[:len(s.naks)-1]
		}
		s.naks = append(s.naks, wire.AckRange{Smallest: lo, Largest: hi})
		s.ackNow = true
	} else if s.anyRecv && pn < s.largestRecv {
		s.ackNow = true // fills a gap: tell the sender quickly
	}
	if !s.anyRecv && pn > 0 {
		s.naks = append(s.naks[:0], wire.AckRange{Smallest: 0, Largest: pn - 1})
		s.ackNow = true
	}
	s.recvd.add(pn, pn+1)
	for len(s.recvd.s) > maxRecvRanges {
		s.recvHorizon = s.recvd.s[0].hi
		s.recvd.s = append(s.recvd.s[:0], s.recvd.s[1:]...)
	}
	if !s.anyRecv || pn > s.largestRecv {
		s.largestRecv, s.largestRecvAt, s.anyRecv = pn, now, true
	}
	s.ackPending = true
	if eliciting {
		s.elicitingSince++
		if s.elicitingSince >= 2 {
			s.ackNow = true
		} else if s.ackDeadline.IsZero() {
			s.ackDeadline = now.Add(s.cfg.MaxAckDelay)
		}
	}
}

func (s *Session) handleFrameLocked(f wire.Frame, now time.Time) error {
	switch f := f.(type) {
	case *wire.StreamFrame:
		st, err := s.streamForFrameLocked(f.StreamID, true)
		if err != nil || st == nil {
			return err
		}
		return st.onStreamFrameLocked(f.Offset, f.Data, f.Fin)
	case *wire.AckFrame:
		return s.onAckLocked(f, now)
	case *wire.NakFrame:
		s.stats.inc(CounterNaksReceived)
		s.onNakLocked(f, now)
	case *wire.PingFrame:
	case *wire.MaxDataFrame:
		if f.Max > s.peerMaxData {
			s.peerMaxData = f.Max
			s.requeueBlockedLocked()
		}
	case *wire.MaxStreamDataFrame:
		st, err := s.streamForFrameLocked(f.StreamID, false)
		if err != nil || st == nil {
			return err
		}
		if f.Max > st.peerMax {
			st.peerMax = f.Max
			s.enqueueLocked(st)
		}
	case *wire.MaxStreamsFrame:
		if f.Max > s.peerMaxStreams {
			s.peerMaxStreams = f.Max
			signal(s.streamCredit)
		}
	case *wire.ResetStreamFrame:
		st, err := s.streamForFrameLocked(f.StreamID, true)
		if err != nil || st == nil {
			return err
		}
		switch {
		case st.finRecv && f.FinalSize != st.finalSize:
			return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("RESET_STREAM final size %d on stream %d differs from FIN at %d", f.FinalSize, st.id, st.finalSize)}
		case f.FinalSize < st.highestRecv:
			return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("RESET_STREAM final size %d on stream %d below received data %d", f.FinalSize, st.id, st.highestRecv)}
		case f.FinalSize > st.recvMax:
			return &SessionError{Code: CodeFlowControl, Reason: fmt.Sprintf("RESET_STREAM final size %d on stream %d beyond MAX_STREAM_DATA %d", f.FinalSize, st.id, st.recvMax)}
		}
		if f.FinalSize > st.highestRecv {
			if err := s.onReceivedLocked(f.FinalSize - st.highestRecv); err != nil {
				return err
			}
			st.highestRecv = f.FinalSize
		}
		if st.readErr == nil {
			st.readErr = &StreamError{StreamID: st.id, Code: ErrorCode(f.ErrorCode), Remote: true, Op: "reset"}
			// Bytes that will never be read return their session credit.
			s.onConsumedLocked(st.highestRecv - st.readOff)
			st.readOff = st.highestRecv
			st.recvd.clear()
			st.recvBuf = nil
			signal(st.readCh)
		}
		st.maybeRemoveLocked()
	case *wire.StopSendingFrame:
		st, err := s.streamForFrameLocked(f.StreamID, false)
		if err != nil || st == nil {
			return err
		}
		if !st.resetQueued && !st.finAcked {
			st.resetLocked(ErrorCode(f.ErrorCode), &StreamError{StreamID: st.id, Code: ErrorCode(f.ErrorCode), Remote: true, Op: "stop sending"})
		}
	case *wire.CloseFrame:
		s.closeLocked(&SessionError{Code: ErrorCode(f.ErrorCode), Remote: true, Reason: string(f.Reason)}, false)
	case *wire.CryptoFrame, *wire.NewTokenFrame:
		return s.handlePostHandshakeLocked(f)
	}
	return nil
}

// streamForFrameLocked finds the stream a frame names, opening a peer stream
// on its first frame. It returns nil, nil for a stream that already finished.
// recvSide says the frame is about data the peer sends.
func (s *Session) streamForFrameLocked(id uint64, recvSide bool) (*Stream, error) {
	if st := s.streams[id]; st != nil {
		return st, nil
	}
	if !s.isPeerStream(id) {
		if id >= s.nextLocal {
			return nil, &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("frame for stream %d that was never opened", id)}
		}
		return nil, nil // finished
	}
	idx := id / 2 // peer streams are idx 0, 1, 2, ...
	if idx < s.peerOpenedIdx {
		return nil, nil // finished
	}
	if idx >= s.maxPeerStreams {
		return nil, &SessionError{Code: CodeStreamLimit, Reason: fmt.Sprintf("peer opened stream %d beyond its limit of %d streams", id, s.maxPeerStreams)}
	}
	// Open every peer stream up to idx (streams open in order).
	var st *Stream
	for ; s.peerOpenedIdx <= idx; s.peerOpenedIdx++ {
		sid := s.peerOpenedIdx*2 + id&1
		st = newStream(s, sid)
		s.streams[sid] = st
		s.stats.inc(CounterStreamsOpened)
		if !s.deliverLocked(st) {
			st.closed, st.readClosed = true, true
			st.resetLocked(CodeStreamLimit, &StreamError{StreamID: sid, Code: CodeStreamLimit, Op: "reset"})
			st.stopQueued, st.stopCode = true, CodeStreamLimit
		}
	}
	return st, nil
}

// deliverLocked hands a new peer stream to the application without blocking.
func (s *Session) deliverLocked(st *Stream) bool {
	q := s.acceptQ
	if q == nil {
		q = s.ep.listener.acceptQ
	}
	select {
	case q <- st:
		return true
	default:
		s.stats.inc(CounterDropsAcceptQueue)
		return false
	}
}

// requeueBlockedLocked puts streams with unsent data back on the send queue
// after the session window grew.
func (s *Session) requeueBlockedLocked() {
	for _, st := range s.streams {
		if st.sendNext < st.writeOff {
			s.enqueueLocked(st)
		}
	}
}

// onAckLocked processes an ACK frame (docs/PROTOCOL.md §8).
func (s *Session) onAckLocked(f *wire.AckFrame, now time.Time) error {
	s.stats.inc(CounterAcksReceived)
	largest := f.Largest()
	if largest >= s.nextPN {
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("ACK of packet %d that was never sent (next is %d)", largest, s.nextPN)}
	}
	newly := false
	// Walk ranges from the smallest upwards over the history.
	for ri := len(f.Ranges) - 1; ri >= 0; ri-- {
		r := f.Ranges[ri]
		for i := s.sent.search(r.Smallest); i < s.sent.len(); i++ {
			p := s.sent.at(i)
			if p.pn > r.Largest {
				break
			}
			if p.done {
				continue
			}
			if p.pn == largest {
				delay := min(time.Duration(f.AckDelay)*time.Microsecond, s.peerMaxAckDelay())
				s.rtt.update(now.Sub(p.sentAt), delay)
			}
			s.onPacketAckedLocked(p, now)
			newly = true
		}
	}
	if !s.anyAcked || largest > s.largestAcked {
		s.largestAcked, s.anyAcked = largest, true
	}
	if newly {
		s.ptoCount = 0
		s.detectLossesLocked(now)
		s.sent.popDone()
	}
	return nil
}

func (s *Session) onPacketAckedLocked(p *sentPacket, now time.Time) {
	p.done = true
	s.inFlight -= p.size
	s.cc.OnAck(now, p.size, p.sentAt, &s.rtt)
	if p.ctl&ctlPostHandshake != 0 {
		s.onPostHandshakeDoneLocked(false)
	}
	for _, c := range p.chunks[:p.nchunks] {
		st := s.streams[c.stream]
		if st == nil {
			continue
		}
		switch c.kind {
		case chunkData:
			st.onAckedLocked(c.off, uint64(c.n), c.fin)
		case chunkReset:
			st.resetAcked = true
			st.maybeRemoveLocked()
		}
	}
}

// onNakLocked declares the named packets lost at once.
func (s *Session) onNakLocked(f *wire.NakFrame, now time.Time) {
	for _, r := range f.Ranges {
		for i := s.sent.search(r.Smallest); i < s.sent.len(); i++ {
			p := s.sent.at(i)
			if p.pn > r.Largest {
				break
			}
			if !p.done {
				s.onPacketLostLocked(p, now, true)
			}
		}
	}
	s.sent.popDone()
}

// detectLossesLocked applies the packet and time thresholds (RFC 9002 §6.1).
func (s *Session) detectLossesLocked(now time.Time) {
	s.lossTime = time.Time{}
	if !s.anyAcked {
		return
	}
	delay := s.rtt.lossDelay()
	for i := 0; i < s.sent.len(); i++ {
		p := s.sent.at(i)
		if p.pn >= s.largestAcked {
			break
		}
		if p.done {
			continue
		}
		if s.largestAcked-p.pn >= 3 || now.Sub(p.sentAt) >= delay {
			s.onPacketLostLocked(p, now, true)
			continue
		}
		if t := p.sentAt.Add(delay); s.lossTime.IsZero() || t.Before(s.lossTime) {
			s.lossTime = t
		}
	}
}

// onPacketLostLocked queues a lost packet's contents for retransmission.
// confirmed is false for a timeout's probe: the loss is only suspected, so
// the congestion window stays (RFC 9002 §6.2) until persistent congestion.
func (s *Session) onPacketLostLocked(p *sentPacket, now time.Time, confirmed bool) {
	p.done = true
	s.inFlight -= p.size
	if confirmed {
		s.cc.OnLoss(now, p.size, p.sentAt)
	}
	s.stats.inc(CounterRetransmits)
	if p.ctl&ctlMaxData != 0 {
		s.maxDataQueued = true
	}
	if p.ctl&ctlMaxStreams != 0 {
		s.maxStreamsQueued = true
	}
	if p.ctl&ctlPostHandshake != 0 {
		s.onPostHandshakeDoneLocked(true)
	}
	for _, c := range p.chunks[:p.nchunks] {
		st := s.streams[c.stream]
		if st == nil {
			continue
		}
		switch c.kind {
		case chunkData:
			st.onLostLocked(c.off, uint64(c.n), c.fin)
		case chunkReset:
			st.resetSent = false
			s.enqueueLocked(st)
		case chunkStop:
			if !st.finRecv && st.readErr == nil {
				st.stopQueued = true
				s.enqueueLocked(st)
			}
		case chunkMSD:
			st.maxDataQueued = true
			s.enqueueLocked(st)
		}
	}
}
