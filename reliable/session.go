package reliable

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raptormq/raptor/wire"
)

type sessionState uint8

const (
	stateHandshake sessionState = iota // TLS handshake in progress (handshake.go)
	stateEstablished
	stateClosing // CLOSE sent or received: answering stragglers, then gone
	stateClosed
)

// Session is one Raptor association between two endpoints: a handshake, then
// many streams sharing loss recovery, congestion control and flow control
// (docs/PROTOCOL.md §8).
type Session struct {
	ep        *endpoint
	clientKey clientKey // listener side: the client's address and ID
	touched   bool      // read loop: already in this batch's wake list
	cfg       *Config
	isClient  bool
	localID   wire.ConnID
	peer      netip.AddrPort
	peerAddr  net.Addr

	wake         chan struct{} // wakes the run loop (cap 1)
	wakePending  atomic.Bool
	established  chan struct{} // closed when the handshake completes
	done         chan struct{} // closed when the session has ended
	closeSent    chan struct{} // closed when our CLOSE has been sent (or the session ended)
	acceptQ      chan *Stream  // streams the peer opened (client sessions)
	streamCredit chan struct{} // MAX_STREAMS raised (cap 1)
	stats        counters
	// acceptWaiting counts this session's streams in the listener's shared
	// accept queue (its fair share is bounded, see deliverLocked).
	acceptWaiting atomic.Int32
	timer         *time.Timer // the session's one timer; Reset only under mu

	mu sync.Mutex
	// everything below is guarded by mu
	state    sessionState
	err      error // why the session ended
	remoteID wire.ConnID

	// inlineSent counts datagrams a Write sent from its own goroutine,
	// ackOnlySent those that carried nothing but ACK and NAK frames (tests
	// read them: the low-rate request path, docs/ARCHITECTURE.md).
	inlineSent, ackOnlySent uint64

	// handshake (client)
	hsToken    []byte
	hsDst      wire.ConnID
	hsNext     time.Time
	hsInterval time.Duration
	hsDeadline time.Time
	hsErr      error
	hsSentAt   time.Time // when the latest Initial left
	hsSends    int       // Initials sent since the Retry (an RTT sample needs exactly one)

	peerParams  wire.Params
	idleTimeout time.Duration
	hs          *handshake // TLS handshake until confirmed (handshake.go)
	prot        protection // 1-RTT packet protection (protect.go)

	pmtu sizeDiscovery // datagram size discovery (pmtud.go)

	// sending
	rec              *recovery // sent history, ACK/NAK, loss, PTO, RTT, congestion, pacing
	lastSent         time.Time
	inlineAt         time.Time // when a Write last sent inline (and armed the timer for its reply's ACK)
	pingQueued       bool
	closeQueued      bool
	closeByUs        bool // we sent CLOSE: repeat it to stragglers while lingering
	closeSentPending bool // the CLOSE packet is in the batch being flushed
	closeCode        ErrorCode
	closeReason      string
	drainUntil       time.Time
	graceful         bool       // Close called: end once all data is acknowledged
	armed            time.Time  // when the run loop's timer fires
	sending          bool       // a goroutine is building and writing packets (owns out*)
	pacingAt         time.Time  // pacing holds stream data until then
	flushAt          time.Time  // FlushDelay holds a small write until then
	pending          sentPacket // record of the packet being built

	// receiving
	rcv      receivedTracker // packet numbers received, ACKs and NAKs due
	lastRecv time.Time

	// memory (budget.go)
	mem         int  // bytes of stream buffers held (charged to the endpoint)
	memReleased bool // the session ended and gave its charge back
	recvMem     int  // of mem, receive buffers
	recvSpans   int  // received-data spans over all streams (gap tracking)

	// flow control
	peerMaxData   uint64 // session bytes we may send
	sentData      uint64
	recvMaxData   uint64 // session bytes the peer may send
	recvData      uint64
	consumed      uint64
	maxDataQueued bool

	// streams
	streams          map[uint64]*Stream
	nextLocal        uint64 // next stream ID we open
	localOpened      uint64 // streams we opened
	peerMaxStreams   uint64 // streams we may open (peer's limit)
	peerOpenedIdx    uint64 // peer stream IDs below nextPeer(idx) were opened
	peerClosed       uint64 // peer streams finished (credit returned)
	maxPeerStreams   uint64 // limit we advertised
	maxStreamsQueued bool
	peerImplicit     rangeSet  // peer stream indexes opened implicitly, not yet named by a frame
	dataBlocked      []*Stream // streams the session window holds back (requeued on MAX_DATA)
	refused          Counter   // non-zero: the packet being handled found no memory (this limit), do not acknowledge it
	sendQueue        []*Stream
	sendQueueHead    int
	sendBuffered     int       // bytes written on all streams and not yet acknowledged
	blockedWriters   []*Stream // writers waiting for SessionSendBuffer room
	requeue          []*Stream
	sendWanted       bool // the run loop found an inline sender busy

	// packing scratch, reused
	ackFrame wire.AckFrame
	nakFrame wire.NakFrame
	tail     packetTail       // the packet's last STREAM data, still in its send ring
	tailSave [tailPrefix]byte // ring bytes sealTailLocked borrows
	// sealedFromRing counts packets sealed straight from a send ring (tests).
	sealedFromRing uint64
	// Opening into the receive ring (rxring.go): the guess from the last
	// packet, the target it gives the next one, and the frame whose data
	// is there; openedInRing and rxMisses count the packets whose guess
	// held and missed (tests).
	rxGuess      rxGuess
	rxT          rxTarget
	rxIn         rxIn
	openedInRing uint64
	rxMisses     uint64
	outBufs      [][]byte
	outAddrs     []netip.AddrPort
	outPool      []*[]byte
}

func newSession(ep *endpoint, isClient bool, localID wire.ConnID, peer netip.AddrPort) *Session {
	cfg := ep.cfg
	s := &Session{
		ep: ep, cfg: cfg, isClient: isClient, localID: localID, peer: peer,
		peerAddr:       net.UDPAddrFromAddrPort(peer),
		wake:           make(chan struct{}, 1),
		established:    make(chan struct{}),
		done:           make(chan struct{}),
		closeSent:      make(chan struct{}),
		streamCredit:   make(chan struct{}, 1),
		streams:        make(map[uint64]*Stream),
		recvMaxData:    uint64(cfg.SessionReceiveWindow),
		maxPeerStreams: uint64(cfg.MaxStreams),
		idleTimeout:    cfg.IdleTimeout,
	}
	if isClient {
		s.acceptQ = make(chan *Stream, cfg.AcceptBacklog)
	} else {
		s.nextLocal = 1
	}
	s.rec = newRecovery(cfg, randomSeed(), &s.stats)
	s.rec.rx, _ = ep.pc.(datagramWaiter)
	s.rcv.maxAckDelay = cfg.MaxAckDelay
	s.rcv.ackBytes = cfg.MaxDatagramSize
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	return s
}

// localParams are the transport parameters this side announces.
func (s *Session) localParams() wire.Params {
	return wire.Params{
		InitialMaxData:       uint64(s.cfg.SessionReceiveWindow),
		InitialMaxStreamData: uint64(s.cfg.StreamReceiveWindow),
		MaxStreams:           uint64(s.cfg.MaxStreams),
		IdleTimeoutMillis:    uint64(s.cfg.IdleTimeout / time.Millisecond),
		MaxDatagramSize:      uint64(s.cfg.MaxProbedDatagramSize), // what we receive
		MaxAckDelayMicros:    uint64(s.cfg.MaxAckDelay / time.Microsecond),
	}
}

// Ranges of the peer's transport parameters (docs/PROTOCOL.md §5.4). A
// value outside is refused with CodeProtocol before anything converts it.
const (
	minPeerIdleTimeout   = 10 * time.Millisecond // below, a session would end before its first RTT
	maxPeerAckDelayMicro = 1 << 20               // as package wire parses it (about 1 s)
	minPeerDatagramSize  = 1200
	maxPeerStreamsParam  = 1 << 60
	maxPeerIdleMillis    = 1<<62 - 1 // any varint: clamped to ours
)

// checkPeerParams returns a *SessionError (CodeProtocol) naming the first
// parameter out of range.
func checkPeerParams(p *wire.Params) error {
	bad := func(name string, v uint64, rng string) error {
		return &SessionError{Code: CodeProtocol, Reason: fmt.Sprintf("transport parameter %s = %d out of range %s", name, v, rng)}
	}
	switch {
	case p.IdleTimeoutMillis != 0 && p.IdleTimeoutMillis < uint64(minPeerIdleTimeout/time.Millisecond):
		return bad("idle_timeout", p.IdleTimeoutMillis, fmt.Sprintf("0 or %d..%d ms", minPeerIdleTimeout/time.Millisecond, uint64(maxPeerIdleMillis)))
	case p.MaxAckDelayMicros > maxPeerAckDelayMicro:
		return bad("max_ack_delay", p.MaxAckDelayMicros, fmt.Sprintf("0..%d µs", maxPeerAckDelayMicro))
	case p.MaxDatagramSize != 0 && p.MaxDatagramSize < minPeerDatagramSize:
		return bad("max_datagram_size", p.MaxDatagramSize, fmt.Sprintf("0 or >= %d", minPeerDatagramSize))
	case p.MaxStreams > maxPeerStreamsParam:
		return bad("max_streams", p.MaxStreams, fmt.Sprintf("0..2^60"))
	}
	return nil
}

// applyPeerParamsLocked takes the peer's parameters at the end of the
// handshake, refusing values out of range. Durations are compared in the
// peer's units before any conversion, so no value can overflow.
func (s *Session) applyPeerParamsLocked(p wire.Params) error {
	if err := checkPeerParams(&p); err != nil {
		s.stats.inc(CounterViolationParams)
		return err
	}
	s.peerParams = p
	s.peerMaxData = p.InitialMaxData
	s.peerMaxStreams = p.MaxStreams
	if ms := p.IdleTimeoutMillis; ms > 0 && ms < uint64(s.idleTimeout/time.Millisecond) {
		s.idleTimeout = time.Duration(ms) * time.Millisecond
	}
	s.rec.peerAckDelay = time.Duration(p.MaxAckDelayMicros) * time.Microsecond
	for _, st := range s.streams {
		st.peerMax = max(st.peerMax, p.InitialMaxStreamData)
	}
	return nil
}

// peerMaxAckDelay is the ACK delay the peer announced.
func (s *Session) peerMaxAckDelay() time.Duration { return s.rec.peerAckDelay }

// maxPacket is the largest packet, before sealing, we may send the peer now
// (the datagram size that discovery confirmed, pmtud.go).
func (s *Session) maxPacket() int {
	return s.datagramSizeLocked() - s.sealOverhead()
}

// LocalAddr is the local UDP address.
func (s *Session) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(s.ep.pc.LocalAddr()) }

// RemoteAddr is the peer's UDP address.
func (s *Session) RemoteAddr() net.Addr { return s.peerAddr }

// Done is closed when the session has ended; Err then says why.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it is alive.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats returns the session's counters.
func (s *Session) Stats() Stats {
	var st Stats
	s.stats.addTo(&st)
	return st
}

// OpenStream opens a new stream. It blocks while the peer's stream limit is
// reached, until ctx ends.
func (s *Session) OpenStream(ctx context.Context) (*Stream, error) {
	for {
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return nil, err
		}
		if s.localOpened < s.peerMaxStreams {
			st := newStream(s, s.nextLocal)
			s.nextLocal += 2
			s.localOpened++
			st.needOpen = true
			s.streams[st.id] = st
			s.stats.inc(CounterStreamsOpened)
			s.enqueueLocked(st)
			s.mu.Unlock()
			s.wakeSender()
			return st, nil
		}
		s.mu.Unlock()
		select {
		case <-s.streamCredit:
		case <-s.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("raptor: open stream to %s: %w", s.peer, ctx.Err())
		}
	}
}

// AcceptStream returns the next stream the peer opened. On a listener's
// session, streams go to the Listener's Accept instead.
func (s *Session) AcceptStream(ctx context.Context) (*Stream, error) {
	if s.acceptQ == nil {
		return nil, fmt.Errorf("raptor: AcceptStream on a listener's session: use Listener.Accept")
	}
	select {
	case st := <-s.acceptQ:
		return st, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		select {
		case st := <-s.acceptQ:
			return st, nil
		default:
		}
		return nil, s.Err()
	}
}

// Close ends the session gracefully: it waits until every byte written on its
// streams has been acknowledged (at most Config.CloseTimeout), then tells the
// peer. Close is idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	if s.err == nil && s.state == stateEstablished {
		s.graceful = true
	}
	s.mu.Unlock()
	s.wakeSender()
	t := time.NewTimer(s.cfg.CloseTimeout)
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C:
	}
	return s.CloseWithError(CodeNoError, "close timeout: unacknowledged data discarded")
}

// CloseWithError ends the session at once: unsent data is discarded and the
// peer receives code and reason. It returns when the CLOSE has been sent; the
// session lingers a few RTOs (at most 1 s) to repeat it to a peer whose
// packets still arrive, and Done is closed after that.
func (s *Session) CloseWithError(code ErrorCode, reason string) error {
	now := time.Now() // the API's edge: the clock is read here and passed down
	s.mu.Lock()
	s.closeLocked(&SessionError{Code: code, Reason: reason}, true, now)
	s.mu.Unlock()
	s.wakeSender()
	select {
	case <-s.closeSent: // the peer has been told; lingering goes on in the background
	case <-s.done:
	}
	return nil
}

// closeLocked ends the session with err at now; if sendClose the peer gets
// a CLOSE.
func (s *Session) closeLocked(err error, sendClose bool, now time.Time) {
	if s.err != nil {
		return
	}
	s.err = err
	if se, ok := err.(*SessionError); ok && sendClose {
		s.closeQueued, s.closeByUs = true, true
		s.closeCode, s.closeReason = se.Code, se.Reason
	}
	if s.hsErr == nil {
		s.hsErr = err
	}
	for _, st := range s.streams {
		st.failLocked(err)
	}
	if s.state == stateHandshake {
		close(s.established)
	}
	s.state = stateClosing
	// Linger a few RTOs to answer the peer's retransmissions with CLOSE.
	linger := s.rec.lingerTime()
	if !sendClose {
		linger = 0
	}
	s.drainUntil = now.Add(linger)
	signal(s.streamCredit)
	s.wakeSenderLocked()
}

// wakeSender makes the run loop look for work. Cheap when already pending.
func (s *Session) wakeSender() {
	if s.wakePending.CompareAndSwap(false, true) {
		signal(s.wake)
	}
}

func (s *Session) wakeSenderLocked() { s.wakeSender() }

// enqueueLocked puts st on the send queue if it is not there yet.
func (s *Session) enqueueLocked(st *Stream) {
	if st.inSendQueue || st.removed {
		return
	}
	st.inSendQueue = true
	if h := s.sendQueueHead; h > 0 && h >= len(s.sendQueue)/2 {
		n := copy(s.sendQueue, s.sendQueue[h:])
		clear(s.sendQueue[n:])
		s.sendQueue, s.sendQueueHead = s.sendQueue[:n], 0
	}
	s.sendQueue = append(s.sendQueue, st)
}

// removeStreamLocked forgets a finished stream and returns credit to the peer.
func (s *Session) removeStreamLocked(st *Stream) {
	delete(s.streams, st.id)
	s.stats.inc(CounterStreamsClosed)
	if s.isPeerStream(st.id) {
		s.peerClosed++
		// Return stream credit in batches of an eighth of the limit.
		if want := s.peerClosed + uint64(s.cfg.MaxStreams); want >= s.maxPeerStreams+max(1, uint64(s.cfg.MaxStreams)/8) {
			s.maxPeerStreams = want
			s.maxStreamsQueued = true
			s.wakeSenderLocked()
		}
	}
}

// isPeerStream reports whether the peer opened stream id.
func (s *Session) isPeerStream(id uint64) bool { return (id&1 == 0) != s.isClient }

// onReceivedLocked accounts n new bytes against the session window.
func (s *Session) onReceivedLocked(n uint64) error {
	s.recvData += n
	if s.recvData > s.recvMaxData {
		return &SessionError{Code: CodeFlowControl, Reason: fmt.Sprintf("peer sent %d bytes, session window is %d", s.recvData, s.recvMaxData)}
	}
	return nil
}

// onConsumedLocked returns n read bytes of session credit to the peer.
func (s *Session) onConsumedLocked(n uint64) {
	s.consumed += n
	win := uint64(s.cfg.SessionReceiveWindow)
	if s.recvMaxData-s.consumed < win/2 {
		s.recvMaxData = s.consumed + win
		s.maxDataQueued = true
		s.wakeSenderLocked()
	}
}

// releaseSendLocked returns n acknowledged bytes of session send buffer and
// wakes writers that waited for it.
func (s *Session) releaseSendLocked(n int) {
	s.sendBuffered -= n
	if len(s.blockedWriters) > 0 && s.sendBuffered < s.cfg.SessionSendBuffer {
		for i, st := range s.blockedWriters {
			signal(st.writeCh)
			s.blockedWriters[i] = nil
		}
		s.blockedWriters = s.blockedWriters[:0]
	}
}
