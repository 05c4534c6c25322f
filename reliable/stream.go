package reliable

import (
	"fmt"
	"io"
	"net"
	"time"
)

// Stream is one ordered, reliable byte stream of a session (docs/PROTOCOL.md
// §7.1). It is a complete net.Conn: Read and Write may run concurrently,
// deadlines interrupt calls that are already blocked, CloseWrite half-closes.
type Stream struct {
	s  *Session
	id uint64

	readCh, writeCh chan struct{} // wake a blocked Read / Write (cap 1)
	rdl, wdl        *deadline

	// Everything below is guarded by s.mu.

	// Send side. Bytes [sendBase, writeOff) are held in the ring sendBuf
	// (bufpool.go), of base sendRing: retransmissions read them back from it.
	sendBuf      []byte
	sendRing     uint64
	sendBase     uint64   // every byte below is acknowledged
	writeOff     uint64   // end of the bytes written by the application
	sendNext     uint64   // lowest offset never sent
	acked        rangeSet // acknowledged spans above sendBase
	retx         rangeSet // lost spans waiting to be resent
	peerMax      uint64   // the peer's MAX_STREAM_DATA
	needOpen     bool     // announce the stream even without data
	finQueued    bool     // CloseWrite: FIN at writeOff
	finSent      bool
	finAcked     bool
	resetCode    ErrorCode
	resetQueued  bool // send RESET_STREAM
	resetSent    bool
	resetAcked   bool
	writeErr     error // set when writing is no longer possible
	inSendQueue  bool
	dataBlocked  bool      // on the session's dataBlocked list
	pendingSince time.Time // when unsent data started waiting (FlushDelay)

	// Receive side. The ring recvBuf (bufpool.go), of base recvRing, holds
	// the received bytes of offsets [readOff, readOff+len(recvBuf)).
	recvBuf  []byte
	recvRing uint64
	recvPeak int      // the most recvBuf had to hold since it was taken
	recvHint int      // recvPeak of the last ring: the size the next one starts at
	readOff  uint64   // next offset Read returns
	recvd    rangeSet // received spans at or above readOff
	// A Read blocked with nothing to read lends its buffer: the next bytes
	// in order are copied straight into it (one copy from the datagram, not
	// two through the ring). direct is that buffer, directID the call's
	// number (readSeq counts the calls), directN how many bytes it got.
	direct        []byte
	directID      uint64
	directN       int
	directCh      chan struct{} // wakes the Read that lent direct (cap 1)
	readSeq       uint64
	highestRecv   uint64 // highest offset+len seen (flow-control accounting)
	recvMax       uint64 // MAX_STREAM_DATA we advertised
	finalSize     uint64
	finRecv       bool
	stopQueued    bool // send STOP_SENDING
	stopCode      ErrorCode
	maxDataQueued bool  // send MAX_STREAM_DATA
	readErr       error // set when reading ends with an error (reset, session)
	readClosed    bool  // Close was called: discard incoming data
	closed        bool  // Close was called
	removed       bool  // dropped from the session's table
}

func newStream(s *Session, id uint64) *Stream {
	st := &Stream{
		s: s, id: id,
		readCh: make(chan struct{}, 1), writeCh: make(chan struct{}, 1), directCh: make(chan struct{}, 1),
		rdl: newDeadline(), wdl: newDeadline(),
		peerMax: s.peerParams.InitialMaxStreamData,
		recvMax: uint64(s.cfg.StreamReceiveWindow),
	}
	if s.ep.lead.dl != nil {
		st.rdl.expired = func() { s.ep.lead.interrupt(st) }
	}
	return st
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ID is the stream's number within its session (docs/PROTOCOL.md §8).
func (st *Stream) ID() uint64 { return st.id }

// Session returns the session the stream belongs to.
func (st *Stream) Session() *Session { return st.s }

// LocalAddr is the local UDP address of the session.
func (st *Stream) LocalAddr() net.Addr { return st.s.LocalAddr() }

// RemoteAddr is the peer's UDP address.
func (st *Stream) RemoteAddr() net.Addr { return st.s.RemoteAddr() }

// SetDeadline sets the read and write deadlines.
func (st *Stream) SetDeadline(t time.Time) error {
	st.rdl.set(t)
	st.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline for Read calls, pending ones included.
func (st *Stream) SetReadDeadline(t time.Time) error { st.rdl.set(t); return nil }

// SetWriteDeadline sets the deadline for Write calls, pending ones included.
func (st *Stream) SetWriteDeadline(t time.Time) error { st.wdl.set(t); return nil }

// Read reads stream bytes in order. It returns io.EOF after the peer's FIN and
// all data before it, a *StreamError if the peer reset the stream, and the
// session's error if the session ended.
func (st *Stream) Read(p []byte) (int, error) {
	s := st.s
	s.mu.Lock()
	st.readSeq++
	id := st.readSeq
	s.mu.Unlock()
	for {
		dl := st.rdl.wait()
		s.mu.Lock()
		if st.directID == id && st.direct == nil && st.directN > 0 {
			n := st.directN // copied into p while we waited (takeDirectLocked)
			st.directN = 0
			s.mu.Unlock()
			return n, nil
		}
		if st.directID == id {
			st.direct = nil // p is ours again
		}
		if closedChan(dl) {
			s.mu.Unlock()
			return 0, &timeoutError{op: "read"}
		}
		n, err := st.readLocked(p)
		if n > 0 || err != nil || len(p) == 0 {
			s.mu.Unlock()
			return n, err
		}
		var lent chan struct{} // only the Read that lent its buffer waits on directCh
		if st.direct == nil && st.directN == 0 {
			st.direct, st.directID = p, id // lend p to the next bytes in order
			lent = st.directCh
		}
		s.mu.Unlock()
		// Nothing to read: read the socket ourselves if nobody does
		// (leader.go), else wait to be woken with data or with the token.
		l := &s.ep.lead
		if l.take() {
			s.ep.leadRead(st, id)
			continue
		}
		if l.dl == nil {
			select {
			case <-st.readCh:
			case <-lent:
			case <-st.rdl.wait():
			}
			continue
		}
		l.waiters.Add(1)
		l.wanted.Store(true)
		if l.take() { // freed before we counted ourselves in
			l.waiters.Add(-1)
			s.ep.leadRead(st, id)
			continue
		}
		select {
		case <-st.readCh:
		case <-lent:
		case <-st.rdl.wait():
		case <-l.free:
			l.waiters.Add(-1)
			if l.take() {
				s.ep.leadRead(st, id) // frees it at once if data came meanwhile, nudging the next waiter
			}
			continue
		}
		l.waiters.Add(-1)
	}
}

func (st *Stream) readLocked(p []byte) (int, error) {
	if st.closed {
		return 0, errStreamClosed
	}
	avail := st.contiguousLocked() - st.readOff
	if avail > 0 && len(p) > 0 {
		n := min(avail, uint64(len(p)))
		ringRead(st.recvBuf, st.readOff-st.recvRing, p[:n])
		st.consumeLocked(n)
		return int(n), nil
	}
	if st.readErr != nil {
		return 0, st.readErr
	}
	if st.finRecv && st.readOff == st.finalSize {
		return 0, io.EOF
	}
	return 0, nil
}

// contiguousLocked is the end of the in-order bytes available to Read.
func (st *Stream) contiguousLocked() uint64 {
	if f, ok := st.recvd.first(); ok && f.lo <= st.readOff {
		return f.hi
	}
	return st.readOff
}

// highestHeldLocked is where the highest stream data held in the receive
// ring ends: the read offset when nothing is held.
func (st *Stream) highestHeldLocked() uint64 {
	if n := len(st.recvd.s); n > 0 {
		return max(st.readOff, st.recvd.s[n-1].hi)
	}
	return st.readOff
}

// consumeLocked advances the read offset by n and returns credit to the peer.
func (st *Stream) consumeLocked(n uint64) {
	s := st.s
	st.readOff += n
	before := len(st.recvd.s)
	st.recvd.trimBelow(st.readOff)
	s.recvSpans += len(st.recvd.s) - before
	if st.recvd.empty() {
		// Everything read: the buffer goes back to the pool (an idle stream
		// holds none). The next one starts at the size this one needed, so
		// that a stream the reader drains often does not grow a new ring,
		// copying, after every drain.
		if st.recvBuf != nil {
			s.putBufLocked(st.recvBuf, true)
			st.recvBuf = nil
			st.recvHint, st.recvPeak = st.recvPeak, 0
		}
	}
	s.stats.add(CounterStreamBytesReceived, n)
	s.onConsumedLocked(n)
	win := uint64(s.cfg.StreamReceiveWindow)
	if !st.finRecv && st.recvMax-st.readOff < win/2 {
		st.recvMax = st.readOff + win
		st.maxDataQueued = true
		s.enqueueLocked(st)
		s.wakeSenderLocked()
	}
	st.maybeRemoveLocked()
}

// dropRecvLocked forgets everything received and not read (a reset).
func (st *Stream) dropRecvLocked() {
	s := st.s
	s.recvSpans -= len(st.recvd.s)
	st.recvd.clear()
	if st.recvBuf != nil {
		s.putBufLocked(st.recvBuf, true)
		st.recvBuf = nil
	}
}

// Write writes p to the stream. It blocks while the stream's send buffer is
// full (the peer's flow-control window and the network pace it) or the
// endpoint is at Config.MaxMemory, and returns early with an error on a
// deadline, CloseWrite, a reset or session end.
func (st *Stream) Write(p []byte) (int, error) {
	s := st.s
	total := 0
	for {
		if closedChan(st.wdl.wait()) {
			return total, &timeoutError{op: "write"}
		}
		s.mu.Lock()
		if err := st.writeErrLocked(); err != nil {
			s.mu.Unlock()
			return total, err
		}
		free := min(s.cfg.StreamSendBuffer-int(st.writeOff-st.sendBase), s.cfg.SessionSendBuffer-s.sendBuffered)
		if free <= 0 && s.cfg.SessionSendBuffer-s.sendBuffered <= 0 && len(p) > 0 {
			s.blockedWriters = append(s.blockedWriters, st) // woken when acknowledgements free session buffer
		}
		if free > 0 && len(p) > 0 {
			n := min(free, len(p))
			need := int(st.writeOff-st.sendBase) + n
			cost := growCost(st.sendBuf, need)
			if cost > 0 && !s.reserveMemLocked(cost) {
				// At the memory ceiling: wait until some is released. Register
				// first, then look again, so that no release is missed.
				s.addMemWaiterLocked(st, cost)
				if !s.reserveMemLocked(cost) {
					s.stats.inc(CounterLimitMemory)
					s.mu.Unlock()
					select {
					case <-st.writeCh:
					case <-st.wdl.wait():
					case <-s.done:
					}
					continue
				}
			}
			var now time.Time // read at the API's edge, only when a transition needs it
			if st.sendNext == st.writeOff && s.cfg.FlushDelay > 0 {
				now = time.Now()
				st.pendingSince = now
			}
			st.sendBuf, st.sendRing = s.growRingLocked(st.sendBuf, st.sendRing, st.sendBase, st.writeOff, need, false, cost)
			ringWrite(st.sendBuf, st.writeOff-st.sendRing, p[:n])
			st.writeOff += uint64(n)
			s.sendBuffered += n
			s.enqueueLocked(st)
			s.sendInlineUnlock(now)
			total += n
			p = p[n:]
			if len(p) == 0 {
				return total, nil
			}
			continue
		}
		s.mu.Unlock()
		if len(p) == 0 {
			return total, nil
		}
		select {
		case <-st.writeCh:
		case <-st.wdl.wait():
		}
	}
}

func (st *Stream) writeErrLocked() error {
	switch {
	case st.closed:
		return errStreamClosed
	case st.writeErr != nil:
		return st.writeErr
	case st.finQueued:
		return errWriteClosed
	}
	return nil
}

// sendSpan returns the buffered bytes [off, off+n), or the first of them up
// to where the ring wraps: the rest start at the ring's start.
func (st *Stream) sendSpan(off, n uint64) []byte {
	if n == 0 {
		return nil
	}
	return ringSpan(st.sendBuf, off-st.sendRing, n)
}

// CloseWrite half-closes the stream: the peer reads io.EOF after all the data
// written before. Reading goes on.
func (st *Stream) CloseWrite() error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.closed {
		return errStreamClosed
	}
	st.closeWriteLocked()
	return nil
}

func (st *Stream) closeWriteLocked() {
	if st.finQueued || st.resetQueued || st.writeErr != nil {
		return
	}
	st.finQueued = true
	st.s.enqueueLocked(st)
	st.s.wakeSenderLocked()
}

// Close closes both directions: data already written is still delivered,
// followed by FIN (as TCP does); data arriving afterwards is discarded and the
// peer is asked to stop sending. Pending Read and Write calls return an error
// that wraps net.ErrClosed. Close is idempotent.
func (st *Stream) Close() error {
	s := st.s
	s.mu.Lock()
	if st.closed {
		s.mu.Unlock()
		return nil
	}
	st.closeWriteLocked()
	st.closed = true
	st.readClosed = true
	if !st.finRecv && st.readErr == nil && s.err == nil {
		st.stopQueued, st.stopCode = true, CodeApplication // PROTOCOL §9: no code given
		s.enqueueLocked(st)
	}
	// Unread bytes are consumed so the session window is not lost.
	if avail := st.contiguousLocked() - st.readOff; avail > 0 {
		st.consumeLocked(avail)
	}
	st.maybeRemoveLocked()
	s.mu.Unlock()
	s.wakeSender()
	signal(st.readCh)
	signal(st.writeCh)
	s.ep.lead.interrupt(st)
	st.rdl.stop()
	st.wdl.stop()
	return nil
}

// Reset abandons the sending side at once with an application error code:
// unsent and unacknowledged data is dropped and the peer's Read fails with a
// *StreamError.
func (st *Stream) Reset(code ErrorCode) error {
	s := st.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.resetQueued || st.finAcked {
		return nil
	}
	st.resetLocked(code, &StreamError{StreamID: st.id, Code: code, Op: "reset"})
	s.wakeSenderLocked()
	return nil
}

func (st *Stream) resetLocked(code ErrorCode, err error) {
	st.resetQueued = true
	st.resetCode = code
	if st.writeErr == nil {
		st.writeErr = err
	}
	st.retx.clear()
	// Unacknowledged bytes will never be sent again: free them.
	st.s.releaseSendLocked(int(st.writeOff - st.sendBase))
	st.sendBase = st.writeOff
	if st.sendBuf != nil {
		st.s.putBufLocked(st.sendBuf, false)
		st.sendBuf = nil
	}
	st.s.enqueueLocked(st)
	signal(st.writeCh)
}

// hasSendWorkLocked reports whether the packer has something for this stream.
func (st *Stream) hasSendWorkLocked() bool {
	if st.resetQueued {
		return !st.resetSent || st.maxDataQueued || st.stopQueued
	}
	return st.maxDataQueued || st.stopQueued || st.needOpen || !st.retx.empty() ||
		st.sendNext < st.writeOff || (st.finQueued && !st.finSent)
}

// sendDoneLocked: nothing more will be sent or resent on this stream.
func (st *Stream) sendDoneLocked() bool {
	if st.resetQueued {
		return st.resetAcked
	}
	return st.finAcked && st.sendBase == st.writeOff
}

// recvDoneLocked: nothing more will be delivered to the application.
func (st *Stream) recvDoneLocked() bool {
	return st.readErr != nil || (st.finRecv && (st.readOff == st.finalSize || st.readClosed))
}

// maybeRemoveLocked drops a finished stream from the session's table.
func (st *Stream) maybeRemoveLocked() {
	if !st.removed && st.sendDoneLocked() && st.recvDoneLocked() && !st.stopQueued && !st.maxDataQueued {
		st.removed = true
		st.s.removeStreamLocked(st)
	}
}

// maxRecvGaps bounds the holes in a stream's received data: each costs a
// span to track, so a peer sending scattered fragments cannot burn the
// receive loop's CPU. More is a protocol violation; the session as a whole
// is bounded more tightly still by maxSessionGaps and its receive budget.
const maxRecvGaps = 1000

// addRecvdLocked marks [lo, hi) received, keeping the session's span count.
func (st *Stream) addRecvdLocked(lo, hi uint64) error {
	before := len(st.recvd.s)
	st.recvd.add(lo, hi)
	n := len(st.recvd.s)
	st.s.recvSpans += n - before
	if n >= maxRecvGaps {
		st.s.stats.inc(CounterViolationGaps)
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("stream %d has %d or more gaps in received data", st.id, maxRecvGaps)}
	}
	return nil
}

// onStreamFrameLocked stores received bytes [off, off+len(data)). Data that
// cannot be stored for want of memory sets s.refused (to the counter of the
// limit that held it): the packet is then not acknowledged, and nothing of
// the frame is taken.
func (st *Stream) onStreamFrameLocked(off uint64, data []byte, fin bool) error {
	s := st.s
	// Data the AEAD decrypted into the ring is taken from there (rxring.go).
	data, inRing := s.rxDataLocked(st, off, data)
	end := off + uint64(len(data))
	if fin {
		if st.finRecv && st.finalSize != end {
			return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("stream %d final size changed from %d to %d", st.id, st.finalSize, end)}
		}
		if end < st.highestRecv {
			return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("stream %d final size %d below received data %d", st.id, end, st.highestRecv)}
		}
	} else if st.finRecv && end > st.finalSize {
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("stream %d data up to %d beyond final size %d", st.id, end, st.finalSize)}
	}
	if end > st.recvMax {
		return &SessionError{Code: CodeFlowControl, Reason: fmt.Sprintf("stream %d data up to %d beyond MAX_STREAM_DATA %d", st.id, end, st.recvMax)}
	}
	if st.readErr != nil {
		return st.acceptFlowLocked(end, fin)
	}
	if st.readClosed {
		// Nobody will read: credit it at once.
		if end > st.readOff {
			lo := max(off, st.readOff)
			if s.refuseLocked(st, lo, 0) {
				return nil
			}
			if err := st.acceptFlowLocked(end, fin); err != nil {
				return err
			}
			if err := st.addRecvdLocked(lo, end); err != nil {
				return err
			}
			st.consumeLocked(st.contiguousLocked() - st.readOff)
		} else if err := st.acceptFlowLocked(end, fin); err != nil {
			return err
		}
		st.maybeRemoveLocked()
		return nil
	}
	if end <= st.readOff || len(data) == 0 {
		if err := st.acceptFlowLocked(end, fin); err != nil {
			return err
		}
		if fin {
			signal(st.readCh)
			st.maybeRemoveLocked()
		}
		return nil
	}
	if off < st.readOff {
		data = data[st.readOff-off:]
		off = st.readOff
	}
	if st.recvd.contains(off, end) {
		return st.acceptFlowLocked(end, fin)
	}
	if st.direct != nil && off == st.readOff && st.contiguousLocked() == off {
		if err := st.acceptFlowLocked(end, fin); err != nil {
			return err
		}
		n := st.takeDirectLocked(data)
		if n == len(data) {
			if fin {
				signal(st.readCh) // EOF, for any Read
			}
			st.maybeRemoveLocked()
			return nil
		}
		data, off = data[n:], off+uint64(n) // the rest goes to the ring
	}
	// Make room: the ring must hold [readOff, end); a new one starts at
	// the size the last one needed, where the limits allow it.
	need := int(end - st.readOff)
	want := need
	if st.recvBuf == nil && st.recvHint > need && s.holdLimitLocked(st, off, growCost(nil, st.recvHint)) == 0 {
		want = st.recvHint
	}
	cost := growCost(st.recvBuf, want)
	if s.refuseLocked(st, off, cost) {
		return nil
	}
	st.recvPeak = max(st.recvPeak, need)
	if err := st.acceptFlowLocked(end, fin); err != nil {
		s.chargeLocked(-cost) // refuseLocked reserved it
		return err
	}
	if cost > 0 {
		hi := st.highestHeldLocked()
		if inRing {
			hi = end // the growth takes the data along (not reached: rxTargetLocked leaves room)
		}
		st.recvBuf, st.recvRing = s.growRingLocked(st.recvBuf, st.recvRing, st.readOff, hi, want, true, cost)
	}
	if inRing {
		s.stats.add(CounterStreamBytesOpenedInRing, uint64(len(data)))
	} else {
		ringWrite(st.recvBuf, off-st.recvRing, data)
	}
	if err := st.addRecvdLocked(off, end); err != nil {
		return err
	}
	if st.contiguousLocked() > st.readOff || fin {
		signal(st.readCh)
	}
	return nil
}

// takeDirectLocked copies the start of data, the next bytes in order, into
// the buffer a blocked Read lent (Stream.direct), as Read would have from the
// ring, and returns how many it took. The Read returns them when it wakes.
func (st *Stream) takeDirectLocked(data []byte) int {
	n := copy(st.direct, data)
	st.direct, st.directN = nil, n
	st.s.stats.add(CounterStreamBytesDirect, uint64(n))
	st.consumeLocked(uint64(n))
	signal(st.directCh)
	return n
}

// acceptFlowLocked accounts data up to end (and a FIN there) against the
// flow-control windows once the frame is taken.
func (st *Stream) acceptFlowLocked(end uint64, fin bool) error {
	if end > st.highestRecv {
		if err := st.s.onReceivedLocked(end - st.highestRecv); err != nil {
			return err
		}
		st.highestRecv = end
	}
	if fin {
		st.finRecv, st.finalSize = true, end
	}
	return nil
}

// refuseLocked decides whether data at off on st, needing cost more bytes
// of buffer, must be refused (its packet left unacknowledged), and if so
// sets s.refused to the counter of the limit that held it (holdLimitLocked's
// limits). When it is taken, the cost is charged (reserveMemLocked checks
// the memory ceiling and charges in one step).
func (s *Session) refuseLocked(st *Stream, off uint64, cost int) bool {
	c := s.budgetLimitLocked(st, off, cost)
	if c == 0 && cost > 0 && !s.reserveMemLocked(cost) {
		c = CounterLimitMemory
	}
	if c == CounterLimitMemory || (c != 0 && s.refused == 0) {
		s.refused = c
	}
	return c != 0
}

// holdLimitLocked is the limit that forbids taking cost more bytes of
// buffer for data at off on st, or 0: the endpoint's memory ceiling, or
// budgetLimitLocked's. It charges nothing.
func (s *Session) holdLimitLocked(st *Stream, off uint64, cost int) Counter {
	if cost > 0 && !s.memAllowsLocked(s.ep.mem.Load(), cost) {
		return CounterLimitMemory
	}
	return s.budgetLimitLocked(st, off, cost)
}

// budgetLimitLocked is the session's receive budget or span limit when the
// data at off on st cannot be read yet and cost more bytes would pass it,
// or 0. Data that is readable at once is taken whenever the endpoint has
// memory, so that the reader progresses.
func (s *Session) budgetLimitLocked(st *Stream, off uint64, cost int) Counter {
	if off <= st.contiguousLocked() {
		return 0
	}
	if s.recvMem+cost+spanCost*s.recvSpans > s.recvBudget() || s.recvSpans >= maxSessionGaps {
		return CounterLimitReceiveBudget
	}
	return 0
}

// onAckedLocked records that bytes [off, off+n) and maybe FIN arrived.
func (st *Stream) onAckedLocked(off, n uint64, fin bool) {
	if n > 0 && off+n > st.sendBase {
		st.acked.add(max(off, st.sendBase), off+n)
		st.retx.remove(off, off+n)
		if f, ok := st.acked.first(); ok && f.lo <= st.sendBase {
			adv := f.hi - st.sendBase
			st.s.releaseSendLocked(int(adv))
			st.sendBase = f.hi
			st.acked.trimBelow(st.sendBase)
			if st.sendBase == st.writeOff && st.sendBuf != nil {
				st.s.putBufLocked(st.sendBuf, false) // drained: the buffer goes back to the pool
				st.sendBuf = nil
			}
			signal(st.writeCh)
		}
	}
	if fin {
		st.finAcked = true
	}
	st.maybeRemoveLocked()
}

// onLostLocked queues bytes [off, off+n) and maybe FIN for retransmission.
func (st *Stream) onLostLocked(off, n uint64, fin bool) {
	if st.resetQueued || st.removed {
		return
	}
	if end := off + n; n > 0 && end > st.sendBase {
		lo := max(off, st.sendBase)
		st.retx.add(lo, end)
		for _, a := range st.acked.s {
			if a.lo >= end {
				break
			}
			st.retx.remove(a.lo, a.hi)
		}
	}
	if fin && !st.finAcked {
		st.finSent = false
	}
	if n == 0 && !fin && st.sendNext == 0 && st.writeOff == 0 {
		st.needOpen = true // the announcing empty frame was lost
	}
	st.s.enqueueLocked(st)
}

// failLocked ends both directions with err (session ended).
func (st *Stream) failLocked(err error) {
	if st.readErr == nil && !st.finRecv { // a complete stream still reads to EOF
		st.readErr = err
	}
	if st.writeErr == nil {
		st.writeErr = err
	}
	signal(st.readCh)
	signal(st.writeCh)
	st.s.ep.lead.interrupt(st)
}
