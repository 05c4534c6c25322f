package reliable

import (
	"fmt"
	"time"

	"github.com/raptormq/raptor/wire"
)

// handleShortLocked processes one short-header packet whose header h was
// parsed from the start of pkt, received at now. The read loop wakes the
// run loop after the batch if there is something to send (afterReceive).
func (s *Session) handleShortLocked(h wire.ShortHeader, hdrLen int, pkt []byte, now time.Time, fp *wire.FrameParser) {
	if s.state == stateClosed {
		s.ep.stats.inc(CounterDropsUnknownSession) // ended, about to leave the table
		return
	}
	payload := pkt[hdrLen:]
	// Validate every frame before acting on any: a malformed packet is dropped
	// whole. Each frame costs O(its size) here and in handleFrameLocked.
	eliciting := false
	// The shape of the packet, for the next one's guess (rxNoteLocked):
	// whether its last frame is STREAM data after frames that touch no
	// stream data.
	shapeOK, lastID, lastOff, lastK, lastN := true, uint64(0), uint64(0), 0, 0
	for b := payload; len(b) > 0; {
		f, n, err := fp.ParseNext(b)
		if err != nil {
			s.stats.inc(CounterDropsMalformed)
			return
		}
		lastN = 0
		switch f := f.(type) {
		case nil, *wire.AckFrame, *wire.NakFrame:
		case *wire.PingFrame, *wire.MaxDataFrame, *wire.MaxStreamDataFrame:
			eliciting = true
		case *wire.StreamFrame:
			eliciting = true
			if lastK != 0 || len(f.Data) == 0 {
				shapeOK = false // a second STREAM frame
			}
			lastID, lastOff, lastN = f.StreamID, f.Offset, len(f.Data)
			lastK = len(payload) - len(b) + n - len(f.Data)
		case *wire.CloseFrame:
			shapeOK = false
		default:
			eliciting, shapeOK = true, false
		}
		b = b[n:]
	}
	shapeOK = shapeOK && lastN > 0
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
				s.closeLocked(&SessionError{Code: ErrorCode(cf.ErrorCode), Remote: true, Reason: string(cf.Reason)}, false, now)
				return
			}
			b = b[n:]
		}
		return
	}
	pn := h.PacketNumber
	if s.rcv.isDuplicate(pn) {
		s.stats.inc(CounterDuplicates)
		s.rcv.onDuplicate(eliciting)
		return
	}
	s.lastRecv = now
	s.refused = 0
	for b := payload; len(b) > 0; {
		f, n, _ := fp.ParseNext(b)
		b = b[n:]
		if f == nil {
			continue
		}
		if err := s.handleFrameLocked(f, now); err != nil {
			s.closeLocked(err, true, now)
			return
		}
		if s.err != nil {
			return
		}
	}
	if s.refused != 0 {
		// Stream data found no memory (the session's receive budget or the
		// endpoint's ceiling): the packet is not acknowledged, so the peer
		// sends it again later, paced by its retransmission timer.
		s.stats.inc(s.refused)
		return
	}
	s.rcv.onPacket(pn, eliciting, len(pkt), now)
	s.rxNoteLocked(shapeOK, lastID, lastOff, lastK, lastN)
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
		s.stats.inc(CounterAcksReceived)
		return s.rec.onAck(f, now, s)
	case *wire.NakFrame:
		s.stats.inc(CounterNaksReceived)
		s.rec.onNak(f, now, s)
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
			st.dropRecvLocked()
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
		s.closeLocked(&SessionError{Code: ErrorCode(f.ErrorCode), Remote: true, Reason: string(f.Reason)}, false, now)
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
		if !s.peerImplicit.contains(idx, idx+1) {
			return nil, nil // finished
		}
		s.peerImplicit.remove(idx, idx+1)
		return s.openPeerStreamLocked(id), nil
	}
	if idx >= s.maxPeerStreams {
		return nil, &SessionError{Code: CodeStreamLimit, Reason: fmt.Sprintf("peer opened stream %d beyond its limit of %d streams", id, s.maxPeerStreams)}
	}
	// Streams open in order: the ones below idx are open now too, but cost
	// nothing (one span of a range set) until a frame names them.
	if idx > s.peerOpenedIdx {
		s.peerImplicit.add(s.peerOpenedIdx, idx)
	}
	s.peerOpenedIdx = idx + 1
	return s.openPeerStreamLocked(id), nil
}

// openPeerStreamLocked creates peer stream id on its first frame and hands
// it to the application; one refused for want of accept-queue room is reset
// and freed once the peer has seen the reset.
func (s *Session) openPeerStreamLocked(id uint64) *Stream {
	st := newStream(s, id)
	s.streams[id] = st
	s.stats.inc(CounterStreamsOpened)
	if !s.deliverLocked(st) {
		err := &StreamError{StreamID: id, Code: CodeStreamLimit, Op: "reset"}
		st.closed, st.readClosed, st.readErr = true, true, err
		st.resetLocked(CodeStreamLimit, err)
		st.stopQueued, st.stopCode = true, CodeStreamLimit
	}
	return st
}

// deliverLocked hands a new peer stream to the application without blocking.
func (s *Session) deliverLocked(st *Stream) bool {
	q := s.acceptQ
	if q == nil {
		q = s.ep.listener.acceptQ
		// The listener's queue is shared: one session may fill only its fair
		// share, so a burst on one cannot turn away the streams of others.
		if share := s.ep.acceptShare(); s.acceptWaiting.Load() >= share {
			s.stats.inc(CounterDropsAcceptQueue)
			return false
		}
	}
	select {
	case q <- st:
		if q != s.acceptQ && s.acceptWaiting.Add(1) == 1 {
			s.ep.acceptSessions.Add(1)
		}
		return true
	default:
		s.stats.inc(CounterDropsAcceptQueue)
		return false
	}
}

// requeueBlockedLocked puts the streams that the session window held back
// on the send queue again after it grew. Each stream is on the list at most
// once, so the work is paid for by the sending that put it there, never by
// the peer's frame.
func (s *Session) requeueBlockedLocked() {
	for i, st := range s.dataBlocked {
		st.dataBlocked = false
		if st.sendNext < st.writeOff {
			s.enqueueLocked(st)
		}
		s.dataBlocked[i] = nil
	}
	s.dataBlocked = s.dataBlocked[:0]
}

// onPacketAcked frees what an acknowledged packet carried (recoveryHandler).
func (s *Session) onPacketAcked(p *sentPacket) {
	s.onDiscoveryAckedLocked(p)
	if p.ctl&ctlAck != 0 {
		s.rcv.onAckAcked(p.ackLargest)
	}
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

// onPacketLost queues a lost packet's contents for retransmission
// (recoveryHandler).
func (s *Session) onPacketLost(p *sentPacket) {
	s.onDiscoveryLostLocked(p)
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
