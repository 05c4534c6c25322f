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

	// Send side. Bytes [sendBase, writeOff) are held at sendBuf[sendHead:].
	sendBuf      []byte
	sendHead     int
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
	pendingSince time.Time // when unsent data started waiting (FlushDelay)

	// Receive side. recvBuf[i] holds offset recvBase+i.
	recvBuf       []byte
	recvBase      uint64
	readOff       uint64   // next offset Read returns
	recvd         rangeSet // received spans at or above readOff
	highestRecv   uint64   // highest offset+len seen (flow-control accounting)
	recvMax       uint64   // MAX_STREAM_DATA we advertised
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
	return &Stream{
		s: s, id: id,
		readCh: make(chan struct{}, 1), writeCh: make(chan struct{}, 1),
		rdl: newDeadline(), wdl: newDeadline(),
		peerMax: s.peerParams.InitialMaxStreamData,
		recvMax: uint64(s.cfg.StreamReceiveWindow),
	}
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
	for {
		if closedChan(st.rdl.wait()) {
			return 0, &timeoutError{op: "read"}
		}
		s.mu.Lock()
		n, err := st.readLocked(p)
		s.mu.Unlock()
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
		select {
		case <-st.readCh:
		case <-st.rdl.wait():
		}
	}
}

func (st *Stream) readLocked(p []byte) (int, error) {
	if st.closed {
		return 0, errStreamClosed
	}
	avail := st.contiguousLocked() - st.readOff
	if avail > 0 && len(p) > 0 {
		i := st.readOff - st.recvBase
		n := copy(p, st.recvBuf[i:i+min(avail, uint64(len(p)))])
		st.consumeLocked(uint64(n))
		return n, nil
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

// consumeLocked advances the read offset by n and returns credit to the peer.
func (st *Stream) consumeLocked(n uint64) {
	s := st.s
	st.readOff += n
	st.recvd.trimBelow(st.readOff)
	if st.recvd.empty() {
		// Everything read: the buffer goes back to the pool.
		st.recvBase = st.readOff
		if st.recvBuf != nil {
			s.ep.bufs.put(st.recvBuf)
			st.recvBuf = nil
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

// Write writes p to the stream. It blocks while the stream's send buffer is
// full (the peer's flow-control window and the network pace it), and returns
// early with an error on a deadline, CloseWrite, a reset or session end.
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
			if st.sendNext == st.writeOff && s.cfg.FlushDelay > 0 {
				st.pendingSince = time.Now()
			}
			st.sendBuf, st.sendHead = s.ep.bufs.grow(st.sendBuf, st.sendHead, n)
			st.sendBuf = append(st.sendBuf, p[:n]...)
			st.writeOff += uint64(n)
			s.sendBuffered += n
			s.enqueueLocked(st)
			s.sendInlineUnlock()
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

// sendBytes returns the buffered bytes [off, off+n).
func (st *Stream) sendBytes(off, n uint64) []byte {
	i := st.sendHead + int(off-st.sendBase)
	return st.sendBuf[i : i+int(n)]
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
		st.s.ep.bufs.put(st.sendBuf)
		st.sendBuf, st.sendHead = nil, 0
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
// receive loop's CPU.
const maxRecvGaps = 1000

// onStreamFrameLocked stores received bytes [off, off+len(data)).
func (st *Stream) onStreamFrameLocked(off uint64, data []byte, fin bool) error {
	s := st.s
	end := off + uint64(len(data))
	if fin {
		if st.finRecv && st.finalSize != end {
			return &SessionError{Code: CodeProtocol, Reason: "stream final size changed"}
		}
		if end < st.highestRecv {
			return &SessionError{Code: CodeProtocol, Reason: "stream final size below received data"}
		}
		st.finRecv, st.finalSize = true, end
	} else if st.finRecv && end > st.finalSize {
		return &SessionError{Code: CodeProtocol, Reason: "stream data beyond final size"}
	}
	if end > st.recvMax {
		return &SessionError{Code: CodeFlowControl, Reason: "stream data beyond MAX_STREAM_DATA"}
	}
	if end > st.highestRecv {
		if err := s.onReceivedLocked(end - st.highestRecv); err != nil {
			return err
		}
		st.highestRecv = end
	}
	if st.readErr != nil {
		return nil
	}
	if st.readClosed {
		// Nobody will read: credit it at once.
		if end > st.readOff {
			lo := max(off, st.readOff)
			st.recvd.add(lo, end)
			st.consumeLocked(st.contiguousLocked() - st.readOff)
		}
		st.maybeRemoveLocked()
		return nil
	}
	if end <= st.readOff || len(data) == 0 {
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
		return nil
	}
	// Make room: slide unread bytes to the front, then grow.
	if need := end - st.recvBase; need > uint64(cap(st.recvBuf)) || st.readOff-st.recvBase > uint64(cap(st.recvBuf))/2 {
		head := int(st.readOff - st.recvBase)
		if st.readOff-st.recvBase > uint64(len(st.recvBuf)) {
			head = len(st.recvBuf)
		}
		var h int
		st.recvBuf, h = s.ep.bufs.grow(st.recvBuf, head, int(end-st.readOff)-(len(st.recvBuf)-head))
		st.recvBase = st.readOff - uint64(h)
	}
	if l := int(end - st.recvBase); l > len(st.recvBuf) {
		st.recvBuf = st.recvBuf[:l]
	}
	copy(st.recvBuf[off-st.recvBase:], data)
	st.recvd.add(off, end)
	if len(st.recvd.s) >= maxRecvGaps {
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("stream %d has %d or more gaps in received data", st.id, maxRecvGaps)}
	}
	if st.contiguousLocked() > st.readOff || fin {
		signal(st.readCh)
	}
	return nil
}

// onAckedLocked records that bytes [off, off+n) and maybe FIN arrived.
func (st *Stream) onAckedLocked(off, n uint64, fin bool) {
	if n > 0 && off+n > st.sendBase {
		st.acked.add(max(off, st.sendBase), off+n)
		st.retx.remove(off, off+n)
		if f, ok := st.acked.first(); ok && f.lo <= st.sendBase {
			adv := f.hi - st.sendBase
			st.sendHead += int(adv)
			st.s.releaseSendLocked(int(adv))
			st.sendBase = f.hi
			st.acked.trimBelow(st.sendBase)
			if st.sendBase == st.writeOff && st.sendBuf != nil {
				st.s.ep.bufs.put(st.sendBuf) // drained: the buffer goes back to the pool
				st.sendBuf, st.sendHead = nil, 0
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
}
