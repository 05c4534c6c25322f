package reliable

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raptormq/raptor/wire"
)

const (
	readBatch       = 64               // datagrams per ReadBatch on a listener
	dialReadBatch   = 16               // ... on a dialed session's own socket
	cookieLifetime  = 10 * time.Second // how long a Retry cookie is accepted
	cookieLen       = 8 + 16
	initialHSResend = 50 * time.Millisecond
)

// endpoint owns one PacketConn: one receive goroutine routes datagrams by
// destination connection ID to its sessions and answers handshakes.
type endpoint struct {
	pc            PacketConn
	cfg           *Config
	listener      *Listener // nil on a dial-only endpoint
	closeWhenIdle bool      // dial endpoint: close pc when its session ends

	mu       sync.Mutex
	sessions map[wire.ConnID]*Session
	byClient map[clientKey]*Session
	closing  bool
	pcClosed bool

	secret     [32]byte
	stats      counters // endpoint-level drops plus finished sessions
	*budget             // memory, sessions and accept-queue shares (shared by a listener's endpoints)
	sendErrors atomic.Uint64
	bufPool    sync.Pool // datagram buffers
	bufs       *bufPool  // stream buffers
	readDone   chan struct{}
	wg         sync.WaitGroup

	// read-loop scratch (only the read goroutine touches these)
	rbufs   [][]byte
	rsizes  []int
	raddrs  []netip.AddrPort
	reply   []byte
	wbufs   [1][]byte
	waddrs  [1]netip.AddrPort
	fp      wire.FrameParser
	touched []*Session
}

type clientKey struct {
	addr netip.AddrPort
	id   wire.ConnID
}

func newEndpoint(pc PacketConn, cfg *Config, batch int) *endpoint {
	e := &endpoint{
		pc: pc, cfg: cfg,
		sessions: make(map[wire.ConnID]*Session),
		byClient: make(map[clientKey]*Session),
		readDone: make(chan struct{}),
		rbufs:    make([][]byte, batch),
		rsizes:   make([]int, batch),
		raddrs:   make([]netip.AddrPort, batch),
	}
	e.budget = newBudget()
	if _, err := rand.Read(e.secret[:]); err != nil {
		panic("raptor: crypto/rand failed: " + err.Error())
	}
	size := cfg.MaxDatagramSize
	e.bufs = newBufPool(max(cfg.StreamSendBuffer, cfg.StreamReceiveWindow))
	e.bufPool.New = func() any { b := make([]byte, 0, size); return &b }
	backing := make([]byte, batch*(size+1))
	for i := range e.rbufs {
		e.rbufs[i] = backing[i*(size+1) : (i+1)*(size+1) : (i+1)*(size+1)]
	}
	return e
}

func (e *endpoint) getBuf() *[]byte  { return e.bufPool.Get().(*[]byte) }
func (e *endpoint) putBuf(b *[]byte) { *b = (*b)[:0]; e.bufPool.Put(b) }

func randomID() wire.ConnID {
	var id wire.ConnID
	if _, err := rand.Read(id[:]); err != nil {
		panic("raptor: crypto/rand failed: " + err.Error())
	}
	return id
}

func (e *endpoint) start() {
	go e.readLoop()
}

func (e *endpoint) startSession(s *Session) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		s.run()
	}()
}

// readLoop is the endpoint's receive goroutine.
func (e *endpoint) readLoop() {
	defer close(e.readDone)
	failures := 0
	for {
		n, err := e.pc.ReadBatch(e.rbufs, e.rsizes, e.raddrs)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.isPCClosed() {
				return
			}
			failures++
			e.cfg.Logger.Warn("raptor: receive failed", "local", e.pc.LocalAddr(), "err", err)
			if failures > 100 {
				time.Sleep(10 * time.Millisecond) // back off on a persistently failing socket
			}
			continue
		}
		failures = 0
		now := time.Now()
		for i := 0; i < n; i++ {
			e.handleDatagram(e.rbufs[i][:e.rsizes[i]], e.raddrs[i], now)
		}
		for i, s := range e.touched {
			s.afterReceive()
			s.touched = false
			e.touched[i] = nil
		}
		e.touched = e.touched[:0]
	}
}

func (e *endpoint) isPCClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pcClosed
}

func (e *endpoint) lookup(id wire.ConnID) *Session {
	e.mu.Lock()
	s := e.sessions[id]
	e.mu.Unlock()
	return s
}

func (e *endpoint) touch(s *Session) {
	if !s.touched {
		s.touched = true
		e.touched = append(e.touched, s)
	}
}

// handleDatagram routes one received datagram. It never panics on any input.
func (e *endpoint) handleDatagram(b []byte, from netip.AddrPort, now time.Time) {
	if len(b) > e.cfg.MaxDatagramSize {
		e.stats.inc(CounterDropsMalformed)
		return
	}
	if wire.IsLongHeader(b) {
		e.handleLong(b, from, now)
		return
	}
	h, hl, err := wire.ParseShortHeader(b)
	if err != nil {
		e.stats.inc(CounterDropsMalformed)
		return
	}
	s := e.lookup(h.DstID)
	if s == nil {
		e.stats.inc(CounterDropsUnknownSession)
		return
	}
	if from != s.peer {
		e.stats.inc(CounterDropsAddressMismatch)
		return
	}
	s.mu.Lock()
	s.handleShortLocked(h, hl, b, now, &e.fp)
	s.mu.Unlock()
	e.touch(s)
}

func (e *endpoint) handleLong(b []byte, from netip.AddrPort, now time.Time) {
	e.stats.inc(CounterPacketsReceived) // handshake packets count on the endpoint
	e.stats.add(CounterBytesReceived, uint64(len(b)))
	h, hl, err := wire.ParseLongHeader(b)
	if err != nil {
		e.stats.inc(CounterDropsMalformed)
		return
	}
	if h.Type == wire.TypeInitial {
		e.handleInitial(h, b, hl, from, now)
		return
	}
	if h.Type != wire.TypeVersionNegotiation && h.Version != wire.Version1 {
		e.stats.inc(CounterDropsVersion)
		return
	}
	s := e.lookup(h.DstID)
	if s == nil || !s.isClient {
		e.stats.inc(CounterDropsUnknownSession)
		return
	}
	if from != s.peer {
		e.stats.inc(CounterDropsAddressMismatch)
		return
	}
	s.mu.Lock()
	ok := s.handleHandshakeLocked(h, b[hl:], now)
	s.mu.Unlock()
	if !ok {
		e.stats.inc(CounterDropsMalformed)
	}
	e.touch(s)
}

// sendReply sends one handshake reply from the read loop.
func (e *endpoint) sendReply(b []byte, to netip.AddrPort) {
	e.wbufs[0], e.waddrs[0] = b, to
	if _, err := e.pc.WriteBatch(e.wbufs[:], e.waddrs[:]); err != nil {
		e.sendErrors.Add(1)
	} else {
		e.stats.inc(CounterPacketsSent)
		e.stats.add(CounterBytesSent, uint64(len(b)))
	}
	e.wbufs[0] = nil
	e.reply = b[:0]
}

// handleInitial is the listener's side of the handshake (docs/PROTOCOL.md §5).
func (e *endpoint) handleInitial(h wire.LongHeader, b []byte, hl int, from netip.AddrPort, now time.Time) {
	l := e.listener
	if l == nil {
		e.stats.inc(CounterDropsUnknownSession)
		return
	}
	if h.Version != wire.Version1 {
		e.stats.inc(CounterDropsVersion)
		if len(b) >= wire.MinInitialSize {
			e.sendReply(wire.AppendVersionNegotiation(e.reply[:0], h.SrcID, h.DstID), from)
		}
		return
	}
	token, params, err := wire.ParseInitial(b[hl:], len(b))
	if err != nil {
		e.stats.inc(CounterDropsMalformed)
		return
	}
	key := clientKey{from, h.SrcID}
	e.mu.Lock()
	s := e.byClient[key]
	closing := e.closing
	e.mu.Unlock()
	count := l.SessionCount() // over all of the listener's receive loops
	if s != nil {
		// A retransmitted Initial: our Accept was lost.
		p := s.localParams()
		e.sendReply(wire.AppendAccept(e.reply[:0], wire.LongHeader{Version: wire.Version1, DstID: h.SrcID, SrcID: s.localID}, &p), from)
		return
	}
	if closing {
		e.stats.inc(CounterDropsSessionLimit)
		e.refuse(h.SrcID, from, CodeRefused, "listener is closing")
		return
	}
	if len(token) == 0 {
		e.sendRetry(h.SrcID, from, now)
		return
	}
	switch e.checkCookie(token, from, h.SrcID, now) {
	case cookieInvalid:
		e.stats.inc(CounterDropsBadCookie)
		return
	case cookieExpired:
		e.stats.inc(CounterDropsBadCookie)
		e.sendRetry(h.SrcID, from, now)
		return
	}
	if count >= e.cfg.MaxSessions {
		e.stats.inc(CounterDropsSessionLimit)
		e.refuse(h.SrcID, from, CodeRefused, fmt.Sprintf("listener has %d sessions, its limit", count))
		return
	}
	if used := e.mem.Load(); used >= e.cfg.MaxMemory {
		e.stats.inc(CounterLimitMemory)
		e.refuse(h.SrcID, from, CodeRefused, fmt.Sprintf("listener holds %d bytes of stream buffers, its Config.MaxMemory of %d", used, e.cfg.MaxMemory))
		return
	}
	if err := checkPeerParams(&params); err != nil {
		e.stats.inc(CounterViolationParams)
		e.refuse(h.SrcID, from, CodeProtocol, err.(*SessionError).Reason)
		return
	}
	s = newSession(e, false, randomID(), from)
	s.remoteID = h.SrcID
	s.state = stateEstablished
	s.applyPeerParamsLocked(params) // checked above: cannot fail
	s.lastRecv = now
	close(s.established)
	e.mu.Lock()
	e.sessions[s.localID] = s
	e.byClient[key] = s
	e.mu.Unlock()
	e.live.Add(1)
	s.clientKey = key
	e.stats.inc(CounterSessionsOpened)
	p := s.localParams()
	e.sendReply(wire.AppendAccept(e.reply[:0], wire.LongHeader{Version: wire.Version1, DstID: h.SrcID, SrcID: s.localID}, &p), from)
	e.startSession(s)
}

// refuse tells a client that no session will be created, with a CLOSE frame in
// a short-header packet smaller than its Initial.
func (e *endpoint) refuse(dst wire.ConnID, to netip.AddrPort, code ErrorCode, reason string) {
	hdr := wire.ShortHeader{DstID: dst}
	b := hdr.Append(e.reply[:0])
	cf := wire.CloseFrame{ErrorCode: uint64(code), Reason: []byte(reason)}
	b, _ = cf.Append(b)
	e.sendReply(b, to)
}

func (e *endpoint) sendRetry(dst wire.ConnID, to netip.AddrPort, now time.Time) {
	token := e.mintCookie(to, dst, now)
	e.sendReply(wire.AppendRetry(e.reply[:0], wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: randomID()}, token), to)
}

func (e *endpoint) cookieMAC(ts []byte, from netip.AddrPort, cid wire.ConnID) []byte {
	mac := hmac.New(sha256.New, e.secret[:])
	mac.Write(ts)
	a := from.Addr().As16()
	mac.Write(a[:])
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], from.Port())
	mac.Write(port[:])
	mac.Write(cid[:])
	return mac.Sum(nil)[:16]
}

// mintCookie makes a stateless Retry token: timestamp || HMAC(...)[:16].
func (e *endpoint) mintCookie(from netip.AddrPort, cid wire.ConnID, now time.Time) []byte {
	tok := make([]byte, 8, cookieLen)
	binary.BigEndian.PutUint64(tok, uint64(now.UnixMilli()))
	return append(tok, e.cookieMAC(tok[:8], from, cid)...)
}

const (
	cookieOK = iota
	cookieInvalid
	cookieExpired
)

func (e *endpoint) checkCookie(tok []byte, from netip.AddrPort, cid wire.ConnID, now time.Time) int {
	if len(tok) != cookieLen || !hmac.Equal(tok[8:], e.cookieMAC(tok[:8], from, cid)) {
		return cookieInvalid
	}
	age := now.Sub(time.UnixMilli(int64(binary.BigEndian.Uint64(tok[:8]))))
	if age > cookieLifetime || age < -time.Second {
		return cookieExpired
	}
	return cookieOK
}

// sessionDone is called by a session's run loop when it has ended.
func (e *endpoint) sessionDone(s *Session) {
	e.mu.Lock()
	delete(e.sessions, s.localID)
	if e.byClient[s.clientKey] == s {
		delete(e.byClient, s.clientKey)
	}
	e.stats.fold(&s.stats)
	e.live.Add(-1)
	e.stats.inc(CounterSessionsClosed)
	closePC := len(e.sessions) == 0 && (e.closeWhenIdle || e.closing) && !e.pcClosed
	if closePC {
		e.pcClosed = true
	}
	e.mu.Unlock()
	s.mu.Lock()
	closeOnce(s.closeSent)
	s.releaseMemLocked()
	s.mu.Unlock()
	close(s.done)
	if closePC {
		e.pc.Close()
	}
}

// snapshot sums the endpoint's counters and those of its live sessions.
func (e *endpoint) snapshot() Stats {
	var st Stats
	e.snapshotInto(&st)
	return st
}

// snapshotInto adds the endpoint's counters and its live sessions' to st.
func (e *endpoint) snapshotInto(st *Stats) {
	e.mu.Lock() // sessionDone folds a session into e.stats under the same lock
	e.stats.addTo(st)
	for _, s := range e.sessions {
		s.stats.addTo(st)
	}
	e.mu.Unlock()
}

// shutdown closes every session (gracefully, in parallel) and then the socket.
func (e *endpoint) shutdown() {
	e.mu.Lock()
	e.closing = true
	list := make([]*Session, 0, len(e.sessions))
	for _, s := range e.sessions {
		list = append(list, s)
	}
	closePC := len(list) == 0 && !e.pcClosed
	if closePC {
		e.pcClosed = true
	}
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Close()
		}()
	}
	wg.Wait()
	if closePC {
		e.pc.Close()
	}
	e.wg.Wait()
	<-e.readDone
}
