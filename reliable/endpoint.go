package reliable

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/raptormq/raptor/wire"
)

const (
	readBatch       = 64 // datagrams per ReadBatch on a listener
	dialReadBatch   = 16 // ... on a dialed session's own socket
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
	// connected: pc is connected to its one peer (udpio.Dial, a dialed
	// session's own socket), so the kernel reports ICMP errors about the
	// peer on it (icmpReport).
	connected bool

	mu       sync.Mutex
	sessions map[wire.ConnID]*Session
	byClient map[clientKey]*Session
	closing  bool
	pcClosed bool

	secret     [32]byte
	tlsServer  *tls.Config // listener: the TLS side of every session
	certSHA256 []byte      // listener: its certificate's fingerprint
	adm        *admission  // listener: shared by all its receive loops
	stats      counters    // endpoint-level drops plus finished sessions
	*budget                // memory, sessions and accept-queue shares (shared by a listener's endpoints)
	sendErrors atomic.Uint64
	bufPool    sync.Pool // datagram buffers
	bigBufPool sync.Pool // datagram buffers above the base size (bufpool.go getOut)
	bufs       *bufPool  // stream buffers
	readDone   chan struct{}
	wg         sync.WaitGroup
	lead       leadership // who reads the socket: the loop or a blocked Read (leader.go)

	// receive scratch (only the holder of the read token touches these: the
	// receive loop or a leading Read, leader.go)
	rbufs   [][]byte
	rsize   int // the largest datagram rbufs hold (setReceiveBuffers)
	rsizes  []int
	raddrs  []netip.AddrPort
	reply   []byte
	wbufs   [1][]byte
	waddrs  [1]netip.AddrPort
	fp      wire.FrameParser
	hfp     wire.HandshakeFrameParser
	touched []*Session
}

// addrUse counts one source address's sessions and handshakes in progress,
// for Config.MaxSessionsPerAddr and MaxHandshakesPerAddr.
type addrUse struct{ sessions, handshakes int }

// admission is a listener's state for admitting sessions, shared by all its
// receive loops (docs/PROTOCOL.md §5.2, §5.6): per-address counts and the
// cookies that opened a session, until they expire. Lock order: after
// Session.mu and endpoint.mu.
type admission struct {
	mu         sync.Mutex
	perAddr    map[netip.Addr]*addrUse
	usedCookie map[[16]byte]time.Time
	usedToken  map[[16]byte]time.Time // address tokens that opened a session, until they expire
	tokenSweep time.Time              // when usedToken was last swept
}

const (
	// addrTokenLen is the size of an address token (docs/PROTOCOL.md §5.8):
	// a marker byte that a 24-byte Retry cookie cannot have in that length,
	// a timestamp and a MAC.
	addrTokenLen    = 1 + 8 + 16
	addrTokenMarker = 0x01
	// addrTokenLifetime is how long an address token admits a reconnect.
	addrTokenLifetime = 10 * time.Minute
	// maxUsedTokens bounds the set of used address tokens; beyond it a token
	// is answered with a Retry, as if it had none.
	maxUsedTokens = 1 << 16
)

type clientKey struct {
	addr netip.AddrPort
	id   wire.ConnID
}

func newEndpoint(pc PacketConn, cfg *Config, batch int) *endpoint {
	e := &endpoint{
		pc: pc, cfg: cfg,
		sessions: make(map[wire.ConnID]*Session),
		byClient: make(map[clientKey]*Session),
		adm:      &admission{perAddr: make(map[netip.Addr]*addrUse)},
		readDone: make(chan struct{}),
		rbufs:    make([][]byte, batch),
		rsizes:   make([]int, batch),
		raddrs:   make([]netip.AddrPort, batch),
	}
	e.budget = newBudget()
	if p, ok := pc.(connectedConn); ok && p.Peer().IsValid() {
		e.connected = true
	}
	e.lead.init(pc, cfg)
	if _, err := rand.Read(e.secret[:]); err != nil {
		panic("raptor: crypto/rand failed: " + err.Error())
	}
	size := cfg.MaxDatagramSize
	e.bufs = newBufPool(max(cfg.StreamSendBuffer, cfg.StreamReceiveWindow))
	e.bufPool.New = func() any { b := make([]byte, 0, size); return &b }
	if big := cfg.MaxProbedDatagramSize; big > size {
		e.bigBufPool.New = func() any { b := make([]byte, 0, big); return &b }
	}
	e.setReceiveBuffers(size)
	return e
}

// setReceiveBuffers gives the receive batch buffers of size+1 bytes (one
// more than the largest datagram accepted, so that a longer one shows as
// longer). They start at the base datagram size: a session announces
// MaxProbedDatagramSize (16 KiB by default) but a peer sends that much only
// after probing for it, and idle sessions should not hold a batch of 16 KiB
// buffers. The first datagram longer than the base grows them to the
// announced size (outgrewReceiveBuffers); that datagram, a size probe, is lost,
// and discovery sends the next probe of its size a quarter RTT later.
func (e *endpoint) setReceiveBuffers(size int) {
	e.rsize = size
	backing := make([]byte, len(e.rbufs)*(size+1))
	for i := range e.rbufs {
		e.rbufs[i] = backing[i*(size+1) : (i+1)*(size+1) : (i+1)*(size+1)]
	}
}

// outgrewReceiveBuffers reports whether b, a received datagram, filled a
// base-size receive buffer past the base size (it was longer and is
// truncated): the token holder then drops it and grows the buffers to the
// announced maximum after its batch (setReceiveBuffers). With GRO on, udpio lends its own 64 KiB slots
// and the buffers are not used, so they never fill.
func (e *endpoint) outgrewReceiveBuffers(b []byte) bool {
	if e.rsize >= e.cfg.MaxProbedDatagramSize || len(b) <= e.rsize || cap(b) != e.rsize+1 {
		return false
	}
	return true
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

// readLoop is the endpoint's receive goroutine. It lends the socket to a
// waiting Read after a batch (leader.go) and reads again once it has it back.
// It alone retries a failing socket (a leader hands the token back), backing
// off, and never lends the token right after a failed read.
func (e *endpoint) readLoop() {
	defer close(e.readDone)
	for {
		switch e.readOnce() {
		case readClosed:
			return
		case readFailed:
			e.backOff()
		default:
			if e.lead.lendWanted() {
				e.lend()
			}
		}
	}
}

// readOutcome is what one readOnce did.
type readOutcome uint8

const (
	readAgain  readOutcome = iota // a batch was dispatched, an interrupt cleared or an ICMP report handled
	readFailed                    // the socket failed (not closed): nothing was read
	readClosed                    // the packet conn is closed
)

// Failing reads: the first few are retried at once, later ones after
// failBackoff each; one warning is logged per failLogEvery.
const (
	failRetries  = 3
	failBackoff  = 10 * time.Millisecond
	failLogEvery = 100
)

// backOff waits before the receive loop retries a failing socket (after
// failRetries consecutive failures), so that a persistent error costs one
// system call per failBackoff and not a core. Close interrupts the wait.
func (e *endpoint) backOff() {
	l := &e.lead
	if l.failures <= failRetries {
		return
	}
	t := time.NewTimer(failBackoff)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-l.wake: // the conn closed (or a stale nudge, of no use to a loop that holds the token)
			if l.closed.Load() {
				return
			}
		}
	}
}

// readOnce reads one batch and dispatches it, on the goroutine that holds
// the read token (the loop or a leading Read). A read interrupted for a
// leader (leader.go) returns readAgain with nothing dispatched, the interrupt
// cleared; so does an ICMP report on a connected socket (icmpReport).
func (e *endpoint) readOnce() readOutcome {
	l := &e.lead
	n, err := e.pc.ReadBatch(e.rbufs, e.rsizes, e.raddrs)
	if err != nil {
		if errors.Is(err, net.ErrClosed) || e.isPCClosed() {
			l.closed.Store(true)
			return readClosed
		}
		if l.dl != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			l.dl.SetReadDeadline(time.Time{})
			return readAgain
		}
		if e.connected && isICMPReport(err) {
			e.icmpReport(err, time.Now())
			return readAgain
		}
		if l.failures%failLogEvery == 0 {
			e.cfg.Logger.Warn("raptor: receive failed", "local", e.pc.LocalAddr(), "err", err, "consecutive", l.failures+1)
		}
		l.failures++
		return readFailed
	}
	l.failures = 0
	now := time.Now()
	grow := false
	for i := 0; i < n; i++ {
		b := e.rbufs[i][:e.rsizes[i]]
		if e.outgrewReceiveBuffers(b) {
			// Truncated at the base size: dropped and counted as any
			// oversize datagram is (a size probe is resent soon).
			grow = true
			e.stats.inc(CounterDropsMalformed)
			continue
		}
		e.handleDatagram(b, e.raddrs[i], now)
	}
	if grow {
		e.setReceiveBuffers(e.cfg.MaxProbedDatagramSize)
	}
	for i, s := range e.touched {
		s.afterReceive()
		s.touched = false
		e.touched[i] = nil
	}
	e.touched = e.touched[:0]
	return readAgain
}

// connectedConn is the capability of a PacketConn connected to one peer
// (*udpio.Conn from udpio.Dial): Peer is that address, or the zero value
// when the conn is not connected.
type connectedConn interface {
	Peer() netip.AddrPort
}

// isICMPReport reports whether err, from a read on a connected socket, is
// an ICMP error about the peer that the kernel held for the socket (sk_err,
// reported once): the errnos Linux maps ICMP and ICMPv6 destination
// unreachable, packet too big, time exceeded and parameter problem to.
func isICMPReport(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.ENOPROTOOPT, syscall.EMSGSIZE, syscall.EACCES, syscall.EPROTO, syscall.EOPNOTSUPP:
		return true
	}
	return errno == errnoHostIsolated
}

// icmpReport handles an ICMP error about the peer that the kernel reported
// on the endpoint's connected socket (docs/PROTOCOL.md §5.9). During the
// handshake a port unreachable (ECONNREFUSED) ends the dial at once, as a
// TCP dial to a closed port fails (errPortUnreachable). Any other report,
// and every report once the session is established, is counted
// (CounterICMPErrors) and ignored: anyone who sees the session's datagrams
// can forge one, and loss recovery and the idle timeout decide whether the
// peer is gone.
func (e *endpoint) icmpReport(err error, now time.Time) {
	refused := errors.Is(err, syscall.ECONNREFUSED)
	e.mu.Lock()
	var s *Session
	for _, x := range e.sessions { // a connected socket carries one session
		s = x
	}
	e.mu.Unlock()
	if s == nil {
		e.stats.inc(CounterICMPErrors)
		return
	}
	s.mu.Lock()
	if refused && s.state == stateHandshake && s.isClient {
		s.closeLocked(errPortUnreachable(s.peer), false, now)
	} else {
		s.stats.inc(CounterICMPErrors)
	}
	s.mu.Unlock()
	s.wakeSender()
}

// errPortUnreachable is a dial's error when the server's host answered the
// handshake with ICMP port unreachable: a *net.OpError "dial" around
// ECONNREFUSED, as a TCP dial to a closed port fails.
func errPortUnreachable(raddr netip.AddrPort) error {
	return &net.OpError{Op: "dial", Net: "udp", Addr: net.UDPAddrFromAddrPort(raddr),
		Err: fmt.Errorf("raptor: nobody listens there (ICMP port unreachable): %w", syscall.ECONNREFUSED)}
}

// writeBatch sends a batch of s's datagrams. On a connected socket a send
// can fail with an ICMP report the kernel held for an earlier datagram
// (ECONNREFUSED: sendmmsg returns the socket's pending error, once, before
// sending anything): it is handled as on receive (icmpReport) and the
// datagrams from the one that failed are sent once more, so that a forged
// report costs no datagram.
func (s *Session) writeBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	n, err := s.ep.pc.WriteBatch(bufs, addrs)
	if err == nil || n >= len(bufs) || !s.ep.connected || !errors.Is(err, syscall.ECONNREFUSED) {
		return n, err
	}
	s.ep.icmpReport(err, time.Now())
	m, err := s.ep.pc.WriteBatch(bufs[n:], addrs[n:])
	return n + m, err
}

// afterReceive runs after a batch touched the session, on the goroutine that
// read it: it wakes the run loop when there is something to send or an
// earlier deadline.
func (s *Session) afterReceive() {
	s.mu.Lock()
	wake := s.hasWorkLocked() || (s.hs != nil && s.hs.sendNow)
	if !wake {
		s.armLocked(false) // a new ACK or loss deadline: no need to wake anyone
	}
	s.mu.Unlock()
	if wake {
		s.wakeSender()
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
	if len(b) > e.cfg.MaxProbedDatagramSize {
		e.stats.inc(CounterDropsMalformed)
		return
	}
	if wire.IsLongHeader(b) {
		e.handleLong(b, from, now)
		return
	}
	id, ok := wire.PeekDstID(b)
	if !ok || len(b) <= wire.ShortPNOffset {
		e.stats.inc(CounterDropsMalformed)
		return
	}
	s := e.lookup(id)
	if s == nil {
		e.stats.inc(CounterDropsUnknownSession)
		return
	}
	if from != s.peer {
		e.stats.inc(CounterDropsAddressMismatch)
		return
	}
	s.mu.Lock()
	if h, hl, pkt, ok := s.openShortLocked(b, now, &e.fp); ok {
		s.handleShortLocked(h, hl, pkt, now, &e.fp)
		s.rxIn = rxIn{}
	}
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
	if h.Type == wire.TypeInitial && e.listener != nil {
		e.handleInitial(h, b, hl, from, now)
		return
	}
	if h.Type != wire.TypeVersionNegotiation && h.Version != wire.Version1 {
		e.stats.inc(CounterDropsVersion)
		return
	}
	s := e.lookup(h.DstID)
	if s == nil || (h.Type != wire.TypeHandshake && !s.isClient) {
		e.stats.inc(CounterDropsUnknownSession)
		return
	}
	if from != s.peer {
		e.stats.inc(CounterDropsAddressMismatch)
		return
	}
	s.mu.Lock()
	var ok bool
	if h.Type == wire.TypeInitial || h.Type == wire.TypeHandshake {
		ok = s.handleCryptoPacketLocked(h, b, hl, now)
	} else {
		ok = s.handleHandshakeLocked(h, b, now)
	}
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

// handleInitial is the listener's side of the handshake before a session
// exists (docs/PROTOCOL.md §5.6): version check, stateless Retry, cookie
// check, limits; then the session is created and gets the packet.
func (e *endpoint) handleInitial(h wire.LongHeader, b []byte, hl int, from netip.AddrPort, now time.Time) {
	if h.Version != wire.Version1 {
		e.stats.inc(CounterDropsVersion)
		if len(b) >= wire.MinInitialSize {
			e.sendReply(wire.AppendVersionNegotiation(e.reply[:0], h.SrcID, h.DstID), from)
		}
		return
	}
	if len(b) < wire.MinInitialSize {
		e.stats.inc(CounterDropsMalformed) // a client pads every Initial: no amplification
		return
	}
	token, frames, err := wire.ParseInitial(b[hl:])
	if err != nil {
		e.stats.inc(CounterDropsMalformed)
		return
	}
	key := clientKey{from, h.SrcID}
	e.mu.Lock()
	s := e.byClient[key]
	closing := e.closing
	e.mu.Unlock()
	if s != nil {
		// More of the ClientHello, or a retransmission.
		s.mu.Lock()
		ok := s.handleCryptoPacketLocked(h, b, hl, now)
		s.mu.Unlock()
		if !ok {
			e.stats.inc(CounterDropsMalformed)
		}
		e.touch(s)
		return
	}
	if closing {
		e.refuseOnce(h, frames, from, "listener is closing")
		return
	}
	if len(token) == 0 {
		e.sendRetry(h, from, now)
		return
	}
	if isAddrToken(token) {
		// A token from an earlier session (NEW_TOKEN): when it is authentic,
		// fresh and unused, the address is validated without a Retry; in any
		// other case the client gets a Retry, as without a token.
		if !e.checkAddrToken(token, from.Addr(), now) {
			e.retryOnce(h, frames, from, now)
			return
		}
		if used := e.mem.Load(); used >= e.cfg.MaxMemory {
			e.stats.inc(CounterLimitMemory)
			e.refuseOnce(h, frames, from, fmt.Sprintf("listener holds %d bytes of stream buffers, its Config.MaxMemory of %d", used, e.cfg.MaxMemory))
			return
		}
		reason, retry := e.admitToken(token, from.Addr(), e.listener.SessionCount(), now)
		if retry {
			e.retryOnce(h, frames, from, now)
			return
		}
		if reason != "" {
			e.refuseOnce(h, frames, from, reason)
			return
		}
	} else {
		switch e.checkCookie(token, from, h.SrcID, h.DstID, now) {
		case cookieInvalid:
			e.stats.inc(CounterDropsBadCookie)
			return
		case cookieExpired:
			e.stats.inc(CounterDropsBadCookie)
			e.sendRetry(h, from, now)
			return
		}
		if used := e.mem.Load(); used >= e.cfg.MaxMemory {
			e.stats.inc(CounterLimitMemory)
			e.refuseOnce(h, frames, from, fmt.Sprintf("listener holds %d bytes of stream buffers, its Config.MaxMemory of %d", used, e.cfg.MaxMemory))
			return
		}
		if reason := e.admit(token, from.Addr(), e.listener.SessionCount(), now); reason != "" {
			e.refuseOnce(h, frames, from, reason)
			return
		}
	}
	s = newSession(e, false, randomID(), from)
	s.remoteID = h.SrcID
	s.lastRecv = now
	s.clientKey = key
	s.mu.Lock()
	err = s.startHandshakeLocked(e.tlsServer, now)
	s.hs.addrCount = true
	s.mu.Unlock()
	e.mu.Lock()
	e.sessions[s.localID] = s
	e.byClient[key] = s
	e.mu.Unlock()
	e.live.Add(1)
	e.stats.inc(CounterSessionsOpened)
	e.startSession(s)
	s.mu.Lock()
	if err != nil {
		s.failHandshakeLocked(now, err)
	} else if !s.handleCryptoPacketLocked(h, b, hl, now) {
		e.stats.inc(CounterDropsMalformed)
	}
	s.mu.Unlock()
	e.touch(s)
}

// admit checks the limits for a new session from addr with a valid cookie
// and, when it may go ahead, counts it and marks the cookie used. It returns
// why not otherwise.
// count is the listener's sessions over all its receive loops.
func (e *endpoint) admit(token []byte, addr netip.Addr, count int, now time.Time) string {
	var ck [16]byte
	copy(ck[:], token[8:])
	a := e.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	for c, exp := range a.usedCookie {
		if now.After(exp) {
			delete(a.usedCookie, c)
		}
	}
	if _, used := a.usedCookie[ck]; used {
		return "cookie already opened a session"
	}
	if reason := e.limitsLocked(addr, count); reason != "" {
		return reason
	}
	if a.usedCookie == nil {
		a.usedCookie = make(map[[16]byte]time.Time)
	}
	a.usedCookie[ck] = now.Add(cookieLifetime + time.Second)
	e.countLocked(addr)
	return ""
}

// limitsLocked says why a new session from addr may not start, or "".
func (e *endpoint) limitsLocked(addr netip.Addr, count int) string {
	if count >= e.cfg.MaxSessions {
		return fmt.Sprintf("listener has %d sessions, its limit", count)
	}
	if u := e.adm.perAddr[addr]; u != nil {
		if u.sessions >= e.cfg.MaxSessionsPerAddr {
			return fmt.Sprintf("%v has %d sessions, Config.MaxSessionsPerAddr", addr, u.sessions)
		}
		if u.handshakes >= e.cfg.MaxHandshakesPerAddr {
			return fmt.Sprintf("%v has %d handshakes in progress, Config.MaxHandshakesPerAddr", addr, u.handshakes)
		}
	}
	return ""
}

// countLocked counts a new session and its handshake for addr.
func (e *endpoint) countLocked(addr netip.Addr) {
	u := e.adm.perAddr[addr]
	if u == nil {
		u = &addrUse{}
		e.adm.perAddr[addr] = u
	}
	u.sessions++
	u.handshakes++
}

// admitToken is admit for an authentic, fresh address token: the same
// limits, and one session per token. retry says the token cannot be taken
// (used already, or the set of used tokens is full): the client gets a Retry.
func (e *endpoint) admitToken(token []byte, addr netip.Addr, count int, now time.Time) (reason string, retry bool) {
	var mac [16]byte
	copy(mac[:], token[9:])
	a := e.adm
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Sub(a.tokenSweep) >= time.Second || len(a.usedToken) >= maxUsedTokens {
		a.tokenSweep = now
		for c, exp := range a.usedToken {
			if now.After(exp) {
				delete(a.usedToken, c)
			}
		}
	}
	if _, used := a.usedToken[mac]; used || len(a.usedToken) >= maxUsedTokens {
		return "", true
	}
	if reason := e.limitsLocked(addr, count); reason != "" {
		return reason, false
	}
	if a.usedToken == nil {
		a.usedToken = make(map[[16]byte]time.Time)
	}
	a.usedToken[mac] = now.Add(addrTokenLifetime + time.Second)
	e.countLocked(addr)
	return "", false
}

// isAddrToken tells an address token from a Retry cookie by its length and
// marker.
func isAddrToken(tok []byte) bool { return len(tok) == addrTokenLen && tok[0] == addrTokenMarker }

// addrTokenMAC binds an address token to its time and the client's IP
// address, not its port (a reconnect comes from a new socket), under the
// listener's secret, with a label that keeps it apart from cookie MACs.
func (e *endpoint) addrTokenMAC(ts []byte, addr netip.Addr) []byte {
	mac := hmac.New(sha256.New, e.secret[:])
	mac.Write([]byte("raptor address token"))
	mac.Write(ts)
	a := addr.As16()
	mac.Write(a[:])
	return mac.Sum(nil)[:16]
}

// mintAddrToken makes the NEW_TOKEN token for a client at addr:
// 0x01 || timestamp || HMAC(...)[:16] (docs/PROTOCOL.md §5.8).
func (e *endpoint) mintAddrToken(addr netip.Addr, now time.Time) []byte {
	tok := make([]byte, 9, addrTokenLen)
	tok[0] = addrTokenMarker
	binary.BigEndian.PutUint64(tok[1:], uint64(now.UnixMilli()))
	return append(tok, e.addrTokenMAC(tok[1:9], addr)...)
}

// checkAddrToken reports whether tok is an address token this listener made
// for addr within addrTokenLifetime.
func (e *endpoint) checkAddrToken(tok []byte, addr netip.Addr, now time.Time) bool {
	if !isAddrToken(tok) || !hmac.Equal(tok[9:], e.addrTokenMAC(tok[1:9], addr)) {
		return false
	}
	age := now.Sub(time.UnixMilli(int64(binary.BigEndian.Uint64(tok[1:9]))))
	return age <= addrTokenLifetime && age >= -time.Second
}

// handshakeDone: a listener's session completed its handshake.
func (e *endpoint) handshakeDone(s *Session) {
	if s.hs == nil || !s.hs.addrCount {
		return
	}
	s.hs.addrCount = false
	e.adm.mu.Lock()
	if u := e.adm.perAddr[s.peer.Addr()]; u != nil {
		u.handshakes--
	}
	e.adm.mu.Unlock()
}

// refuseOnce refuses a handshake once: in answer to the Initial that starts
// the ClientHello (or carries none), counted as a session-limit drop. The
// Initials that continue a refused ClientHello get nothing (the endpoint
// counted them as received).
func (e *endpoint) refuseOnce(ih wire.LongHeader, frames []byte, to netip.AddrPort, reason string) {
	if f, _, err := e.hfp.ParseNext(frames); err == nil {
		if cf, ok := f.(*wire.CryptoFrame); ok && cf.Offset > 0 {
			return
		}
	}
	e.stats.inc(CounterDropsSessionLimit)
	e.refuse(ih, to, reason)
}

// retryOnce answers an Initial whose address token cannot be taken with a
// Retry, counted as a bad cookie, as refuseOnce does: only the Initial that
// starts the ClientHello (a client with a token sends all of it at once).
func (e *endpoint) retryOnce(ih wire.LongHeader, frames []byte, to netip.AddrPort, now time.Time) {
	if f, _, err := e.hfp.ParseNext(frames); err == nil {
		if cf, ok := f.(*wire.CryptoFrame); ok && cf.Offset > 0 {
			return
		}
	}
	e.stats.inc(CounterDropsBadCookie)
	e.sendRetry(ih, to, now)
}

// refuse tells a client that no session will be created: a CLOSE frame in an
// Initial packet, smaller than the client's Initial.
func (e *endpoint) refuse(ih wire.LongHeader, to netip.AddrPort, reason string) {
	b := wire.AppendInitialHeader(e.reply[:0], wire.LongHeader{Version: wire.Version1, DstID: ih.SrcID, SrcID: ih.DstID}, nil)
	cf := wire.CloseFrame{ErrorCode: uint64(CodeRefused), Reason: []byte(reason)}
	b, _ = cf.Append(b)
	e.sendReply(b, to)
}

func (e *endpoint) sendRetry(ih wire.LongHeader, to netip.AddrPort, now time.Time) {
	scid := randomID()
	token := e.mintCookie(to, ih.SrcID, scid, now)
	e.sendReply(wire.AppendRetry(e.reply[:0], wire.LongHeader{Version: wire.Version1, DstID: ih.SrcID, SrcID: scid}, token, ih.DstID), to)
}

// cookieMAC binds a cookie to its time, the client's address and connection
// ID, and the connection ID the Retry told the client to use (docs/PROTOCOL.md §5.2).
func (e *endpoint) cookieMAC(ts []byte, from netip.AddrPort, cid, retryID wire.ConnID) []byte {
	mac := hmac.New(sha256.New, e.secret[:])
	mac.Write(ts)
	a := from.Addr().As16()
	mac.Write(a[:])
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], from.Port())
	mac.Write(port[:])
	mac.Write(cid[:])
	mac.Write(retryID[:])
	return mac.Sum(nil)[:16]
}

// mintCookie makes a stateless Retry token: timestamp || HMAC(...)[:16].
func (e *endpoint) mintCookie(from netip.AddrPort, cid, retryID wire.ConnID, now time.Time) []byte {
	tok := make([]byte, 8, cookieLen)
	binary.BigEndian.PutUint64(tok, uint64(now.UnixMilli()))
	return append(tok, e.cookieMAC(tok[:8], from, cid, retryID)...)
}

const (
	cookieOK = iota
	cookieInvalid
	cookieExpired
)

func (e *endpoint) checkCookie(tok []byte, from netip.AddrPort, cid, retryID wire.ConnID, now time.Time) int {
	if len(tok) != cookieLen || !hmac.Equal(tok[8:], e.cookieMAC(tok[:8], from, cid, retryID)) {
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
	s.mu.Lock()
	countedHS := s.hs != nil && s.hs.addrCount
	s.dropHandshakeLocked()
	s.closeTLSLocked()
	s.mu.Unlock()
	e.mu.Lock()
	delete(e.sessions, s.localID)
	if e.byClient[s.clientKey] == s {
		delete(e.byClient, s.clientKey)
	}
	e.stats.fold(&s.stats)
	e.live.Add(-1)
	e.stats.inc(CounterSessionsClosed)
	if !s.isClient {
		e.adm.mu.Lock()
		if u := e.adm.perAddr[s.peer.Addr()]; u != nil {
			u.sessions--
			if countedHS {
				u.handshakes--
			}
			if u.sessions <= 0 {
				delete(e.adm.perAddr, s.peer.Addr())
			}
		}
		e.adm.mu.Unlock()
	}
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
		e.lead.closing()
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
	if e.listener != nil {
		unregisterLocalListener(e.pc.LocalAddr())
	}
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
			s.mu.Lock()
			half := s.state == stateHandshake
			s.mu.Unlock()
			if half {
				s.CloseWithError(CodeRefused, "listener closing")
				<-s.done
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	if closePC {
		e.pc.Close()
		e.lead.closing()
	}
	e.wg.Wait()
	<-e.readDone
}
