package reliable

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/raptormq/raptor/wire"
)

// fzConn is an in-memory PacketConn for driving an endpoint by hand: ReadBatch
// blocks until Close (the test calls handleDatagram itself, as the read loop
// would), WriteBatch keeps copies of long-header datagrams (the endpoint's
// handshake replies) and counts the rest.
type fzConn struct {
	local  netip.AddrPort
	closed chan struct{}
	once   sync.Once

	mu    sync.Mutex
	long  [][]byte // long-header datagrams written, oldest first
	short int      // short-header datagrams written
}

func newFzConn(local netip.AddrPort) *fzConn {
	return &fzConn{local: local, closed: make(chan struct{})}
}

func (c *fzConn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	<-c.closed
	return 0, net.ErrClosed
}

func (c *fzConn) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range bufs {
		if wire.IsLongHeader(b) {
			c.long = append(c.long, bytes.Clone(b))
		} else {
			c.short++
		}
	}
	return len(bufs), nil
}

func (c *fzConn) LocalAddr() netip.AddrPort { return c.local }

func (c *fzConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// longWrites returns how many long-header datagrams were written and the last.
func (c *fzConn) longWrites() (int, []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.long) == 0 {
		return 0, nil
	}
	return len(c.long), c.long[len(c.long)-1]
}

var (
	fzServer   = netip.MustParseAddrPort("192.0.2.100:9000")
	fzClient   = netip.MustParseAddrPort("192.0.2.1:4000")   // the established session's peer
	fzClient2  = netip.MustParseAddrPort("192.0.2.2:4000")   // another client
	fzAttacker = netip.MustParseAddrPort("198.51.100.7:666") // a stranger
	fzSameHost = netip.MustParseAddrPort("192.0.2.1:4001")   // the peer's host, another port
	fzSources  = [4]netip.AddrPort{fzClient, fzClient2, fzAttacker, fzSameHost}

	fzClientID = wire.ConnID{'c', 'l', 'i', 'e', 'n', 't', '-', '1'}
	// fzSessionID in a DstID is replaced by the established session's
	// connection ID, which is random, so that seeds can address it.
	fzSessionID = wire.ConnID{'S', 'E', 'S', 'S', 'I', 'O', 'N', '!'}
	// fzCookie as an Initial's token is replaced by a valid cookie for the
	// Initial's source address and SrcID, so that the fuzzer can create sessions.
	fzCookie = []byte("FUZZ-COOKIE-PLACEHOLDER!")

	fzParams = wire.Params{InitialMaxData: 1 << 20, InitialMaxStreamData: 1 << 16, MaxStreams: 16,
		MaxDatagramSize: 1452, MaxAckDelayMicros: 1000}
)

// fzConfig keeps every limit small, so that the fuzzer can reach them. Its
// listeners share one certificate: making one per input was two thirds of
// an input's time.
func fzConfig() *Config {
	return &Config{MaxSessions: 3, MaxStreams: 8, AcceptBacklog: 4,
		StreamReceiveWindow: 4096, SessionReceiveWindow: 16384, StreamSendBuffer: 64 << 10,
		TLS:    &tls.Config{Certificates: []tls.Certificate{fzCertificate()}},
		Logger: slog.New(slog.DiscardHandler)}
}

// fzCertificate is the fuzz listeners' certificate, made once.
var fzCertificate = sync.OnceValue(func() tls.Certificate {
	c, err := NewEphemeralCertificate()
	if err != nil {
		panic(err)
	}
	return c
})

// fzHarness is a listener endpoint over an fzConn with one session established
// by a real handshake, fed datagrams on the test goroutine as its read loop.
type fzHarness struct {
	t        testing.TB
	cfg      *Config
	pc       *fzConn
	l        *Listener
	e        *endpoint
	s        *Session   // the established session
	seen     []*Session // every session the listener created
	accepted []*Stream
	buf      []byte
	rbuf     []byte
	closed   int // datagrams for a session already closed (not counted, see check)
}

func newFzHarness(t testing.TB) *fzHarness {
	cfg, err := fzConfig().populate()
	if err != nil {
		t.Fatal(err)
	}
	pc := newFzConn(fzServer)
	l, err := listenPacket(pc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &fzHarness{t: t, cfg: cfg, pc: pc, l: l, e: l.e,
		buf: make([]byte, 0, cfg.MaxDatagramSize+1), rbuf: make([]byte, 8192)}
	// The established session is plaintext, so that the fuzzer reaches frame
	// handling; FuzzOpenShort covers the protected receive path, and
	// Initials from the fuzzer run the real listener handshake.
	h.s = establishForTest(h.e, fzClient, fzClientID, fzParams)
	h.noteSessions()
	return h
}

// deliver hands one datagram to the endpoint and finishes the batch as the
// read loop does.
func (h *fzHarness) deliver(b []byte, from netip.AddrPort) {
	h.e.handleDatagram(b, from, time.Now())
	for i, s := range h.e.touched {
		s.afterReceive()
		s.touched = false
		h.e.touched[i] = nil
	}
	h.e.touched = h.e.touched[:0]
}

func (h *fzHarness) noteSessions() {
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	for _, s := range h.e.sessions {
		found := false
		for _, o := range h.seen {
			found = found || o == s
		}
		if !found {
			h.seen = append(h.seen, s)
		}
	}
}

// accounted is a sum that every received datagram must raise: a drop
// counter, a packet counted as received, or a handshake reply.
func (h *fzHarness) accounted() uint64 {
	var st Stats
	h.e.stats.addTo(&st)
	for _, s := range h.seen {
		s.stats.addTo(&st) // finished sessions count twice: the sum only grows
	}
	n, _ := h.pc.longWrites()
	return st.Counters[CounterDropsMalformed] + st.Counters[CounterDropsUnknownSession] + st.Counters[CounterDropsAddressMismatch] + st.Counters[CounterDropsBadCookie] +
		st.Counters[CounterDropsVersion] + st.Counters[CounterDropsSessionLimit] + st.Counters[CounterDropsAuth] + st.Counters[CounterPacketsReceived] + uint64(n)
}

// feed delivers one fuzzed datagram after substituting the placeholders, then
// runs the application side (accept, echo, close) and checks the invariants.
func (h *fzHarness) feed(ctl byte, d []byte) {
	from := fzSources[ctl&3]
	b := append(h.buf[:0], d...)
	if len(b) >= 1+wire.ConnIDLen && b[0]&0x80 == 0 && bytes.Equal(b[1:1+wire.ConnIDLen], fzSessionID[:]) {
		copy(b[1:], h.s.localID[:])
	}
	if len(b) >= wire.LongHeaderLen && b[0]&0x80 != 0 {
		if bytes.Equal(b[5:5+wire.ConnIDLen], fzSessionID[:]) {
			copy(b[5:], h.s.localID[:])
		}
		// An Initial's token: one length byte (24) at offset 21.
		if tl := wire.LongHeaderLen + 1 + len(fzCookie); len(b) >= tl && b[wire.LongHeaderLen] == byte(len(fzCookie)) &&
			bytes.Equal(b[wire.LongHeaderLen+1:tl], fzCookie) {
			var src, dst wire.ConnID
			copy(src[:], b[13:21])
			copy(dst[:], b[5:13])
			copy(b[wire.LongHeaderLen+1:], h.e.mintCookie(from, src, dst, time.Now()))
		}
	}
	var target *Session
	if id, ok := wire.PeekDstID(b); ok {
		target = h.e.lookup(id)
	}
	before := h.accounted()
	h.deliver(b, from)
	h.noteSessions()
	if h.accounted() == before {
		// A session that has finished (stateClosed) but is not yet removed
		// drops its packets without counting them. That state is terminal,
		// so it is still visible here.
		if !isClosed(target) {
			h.t.Fatalf("datagram % x from %v was dropped without being counted", b, from)
		}
		h.closed++
	}
	h.application(ctl)
	h.check()
}

func isClosed(s *Session) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateClosed
}

// application accepts every stream waiting, echoes what can be read (never
// blocking) and, as ctl says, closes or resets the oldest accepted stream.
func (h *fzHarness) application(ctl byte) {
	for {
		select {
		case st := <-h.l.acceptQ:
			h.accepted = append(h.accepted, st)
			continue
		default:
		}
		break
	}
	for _, st := range h.accepted {
		s := st.s
		s.mu.Lock()
		n, _ := st.readLocked(h.rbuf)
		free := s.cfg.StreamSendBuffer - int(st.writeOff-st.sendBase)
		s.mu.Unlock()
		if n > 0 && n <= free {
			st.Write(h.rbuf[:n]) // cannot block: the send buffer has room
		}
	}
	if len(h.accepted) > 0 && ctl&0xc0 != 0 {
		st := h.accepted[0]
		switch {
		case ctl&0x80 != 0:
			st.Close()
			h.accepted = h.accepted[1:]
		case ctl&0x40 != 0:
			st.Reset(CodeApplication)
		}
	}
	if ctl&0x20 != 0 && len(h.accepted) > 0 {
		h.accepted[len(h.accepted)-1].CloseWrite()
	}
}

// check asserts the bounds that no input may break.
func (h *fzHarness) check() {
	t, cfg := h.t, h.cfg
	if n := h.l.SessionCount(); n > cfg.MaxSessions {
		t.Fatalf("%d sessions, MaxSessions is %d", n, cfg.MaxSessions)
	}
	for _, s := range h.seen {
		s.mu.Lock()
		if n := len(s.streams); n > cfg.MaxStreams {
			t.Errorf("session %x holds %d streams, MaxStreams is %d", s.localID, n, cfg.MaxStreams)
		}
		if s.err == nil && s.recvData > s.recvMaxData {
			t.Errorf("session %x accepted %d bytes, window %d", s.localID, s.recvData, s.recvMaxData)
		}
		if len(s.rcv.naks) > wire.MaxNakRanges || len(s.rcv.recvd.s) > maxRecvRanges {
			t.Errorf("session %x: %d NAK ranges, %d received ranges", s.localID, len(s.rcv.naks), len(s.rcv.recvd.s))
		}
		if q, opened := len(s.sendQueue)-s.sendQueueHead, s.stats.c[CounterStreamsOpened].Load(); uint64(q) > opened {
			t.Errorf("session %x: %d streams queued to send, %d ever opened", s.localID, q, opened)
		}
		win := uint64(cfg.StreamReceiveWindow)
		for id, st := range s.streams {
			var buffered uint64
			for _, sp := range st.recvd.s {
				buffered += sp.hi - sp.lo
			}
			if buffered > win {
				t.Errorf("stream %d buffers %d bytes, StreamReceiveWindow is %d", id, buffered, win)
			}
			if c := cap(st.recvBuf); c > 2*int(win) {
				t.Errorf("stream %d receive buffer has capacity %d, window %d", id, c, win)
			}
			if s.err == nil && st.highestRecv > st.recvMax {
				t.Errorf("stream %d received up to %d, limit %d", id, st.highestRecv, st.recvMax)
			}
		}
		s.mu.Unlock()
		if t.Failed() {
			t.FailNow()
		}
	}
}

// close ends every session at once (no lingering) and the listener, and fails
// if any of them hangs.
func (h *fzHarness) close() {
	for _, s := range h.seen {
		s.mu.Lock()
		s.closeLocked(&SessionError{Code: CodeApplication, Reason: "fuzz iteration done"}, false, time.Now())
		s.drainUntil = time.Time{}
		s.mu.Unlock()
		s.wakeSender()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			h.t.Fatalf("session %x did not end within 5s of being closed", s.localID)
		}
	}
	done := make(chan struct{})
	go func() { h.l.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.t.Fatalf("Listener.Close did not return within 5s")
	}
}

// fzRecord frames one datagram of a fuzz input: a control byte (bits 0-1: the
// source address, fzSources; 0x80: then close the oldest accepted stream,
// 0x40: reset it; 0x20: CloseWrite the newest), a big-endian 16-bit length and
// the datagram.
func fzRecord(ctl byte, d []byte) []byte {
	b := []byte{ctl, 0, 0}
	binary.BigEndian.PutUint16(b[1:], uint16(len(d)))
	return append(b, d...)
}

func fzInput(recs ...[]byte) []byte { return bytes.Join(recs, nil) }

// fzShort is a short-header packet to the established session.
func fzShort(tb testing.TB, pn uint64, frames ...wire.Frame) []byte {
	hdr := wire.ShortHeader{DstID: fzSessionID, PacketNumber: pn}
	b := hdr.Append(nil)
	for _, f := range frames {
		var err error
		if b, err = f.Append(b); err != nil {
			tb.Fatalf("encoding %T: %v", f, err)
		}
	}
	return b
}

func fzInitial(dst, src wire.ConnID, token []byte) []byte {
	b := wire.AppendInitialHeader(nil, wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: src}, token)
	f := wire.CryptoFrame{Data: []byte("\x01\x00\x00\x04fuzz")} // a ClientHello TLS rejects
	b, _ = f.Append(b)
	return wire.PadInitial(b, 0)
}

// fzSeeds are fuzz inputs built from the encoders: every kind of frame for the
// established session, handshakes of further clients, and broken variants.
func fzSeeds(tb testing.TB) [][]byte {
	data := func(id, off uint64, s string, fin bool) *wire.StreamFrame {
		return &wire.StreamFrame{StreamID: id, Offset: off, Data: []byte(s), Fin: fin, HasLen: true}
	}
	ack := func(lo, hi uint64) *wire.AckFrame {
		return &wire.AckFrame{AckDelay: 100, Ranges: []wire.AckRange{{Smallest: lo, Largest: hi}}}
	}
	c2 := wire.ConnID{'c', 'l', 'i', 'e', 'n', 't', '-', '2'}
	c3 := wire.ConnID{'c', 'l', 'i', 'e', 'n', 't', '-', '3'}
	c4 := wire.ConnID{'c', 'l', 'i', 'e', 'n', 't', '-', '4'}
	any := wire.ConnID{9, 9, 9, 9, 9, 9, 9, 9}
	forged := bytes.Repeat([]byte{0xab}, len(fzCookie))
	badVersion := fzInitial(any, c2, nil)
	binary.BigEndian.PutUint32(badVersion[1:], 0x0a0a0a0a)
	retryToServer := wire.AppendRetry(nil, wire.LongHeader{Version: wire.Version1, DstID: fzSessionID, SrcID: c2}, forged, any)
	acceptToServer := append(wire.AppendHandshakeHeader(nil, wire.LongHeader{Version: wire.Version1, DstID: fzSessionID, SrcID: c2}, 0), bytes.Repeat([]byte{7}, 40)...)
	reservedType := append([]byte(nil), retryToServer...)
	reservedType[0] = 0xc5

	hello := fzShort(tb, 0, data(0, 0, "hello", false))
	seeds := [][]byte{
		nil,
		// A stream that is written, acknowledged, finished and echoed.
		fzInput(fzRecord(0, hello), fzRecord(0, fzShort(tb, 1, data(0, 5, " world", true), &wire.PingFrame{})),
			fzRecord(0, fzShort(tb, 2, ack(0, 0))), fzRecord(0, fzShort(tb, 3, ack(0, 1), &wire.MaxDataFrame{Max: 1 << 21}))),
		// Out of order, duplicates, a gap that makes a NAK, NAKs and ACKs of
		// packets the server sent.
		fzInput(fzRecord(0, fzShort(tb, 5, data(0, 10, "later", false))), fzRecord(0, hello), fzRecord(0, hello),
			fzRecord(0, fzShort(tb, 3, data(0, 5, "12345", false))),
			fzRecord(0, fzShort(tb, 9, &wire.NakFrame{Ranges: []wire.AckRange{{Smallest: 0, Largest: 1}}}, ack(2, 2))),
			fzRecord(0, fzShort(tb, 100, &wire.PingFrame{}))),
		// Flow control: data beyond the stream window, and a reset beyond it.
		fzInput(fzRecord(0, fzShort(tb, 0, data(0, 4090, "too much data", false)))),
		fzInput(fzRecord(0, hello), fzRecord(0, fzShort(tb, 1, &wire.ResetStreamFrame{StreamID: 0, ErrorCode: 9, FinalSize: 1 << 40}))),
		// Stream control frames.
		fzInput(fzRecord(0, hello),
			fzRecord(0, fzShort(tb, 1, &wire.MaxStreamDataFrame{StreamID: 0, Max: 1 << 20}, &wire.MaxStreamsFrame{Max: 100})),
			fzRecord(0x40, fzShort(tb, 2, &wire.StopSendingFrame{StreamID: 0, ErrorCode: 7})),
			fzRecord(0, fzShort(tb, 3, &wire.ResetStreamFrame{StreamID: 0, ErrorCode: 8, FinalSize: 5})),
			fzRecord(0x80, fzShort(tb, 4, data(2, 0, "second", true)))),
		// Frames for streams the server never opened, and beyond the limit.
		fzInput(fzRecord(0, fzShort(tb, 0, &wire.MaxStreamDataFrame{StreamID: 1, Max: 10}))),
		fzInput(fzRecord(0, fzShort(tb, 0, data(100, 0, "x", false)))),
		// Many streams at once: beyond the accept backlog.
		fzInput(fzRecord(0, fzShort(tb, 0, data(14, 0, "x", false))), fzRecord(0x80, fzShort(tb, 1, ack(0, 0)))),
		// An ACK of a packet never sent; CLOSE.
		fzInput(fzRecord(0, hello), fzRecord(0, fzShort(tb, 1, ack(0, 1<<20)))),
		fzInput(fzRecord(0, hello), fzRecord(0, fzShort(tb, 1, &wire.CloseFrame{ErrorCode: 0x100, Reason: []byte("bye")})),
			fzRecord(0, fzShort(tb, 2, &wire.PingFrame{}))),
		// Other sources: another port of the peer's host, a stranger, and a
		// connection ID nobody has.
		fzInput(fzRecord(3, hello), fzRecord(2, hello), fzRecord(0, append([]byte{0x40, 1, 2, 3, 4, 5, 6, 7, 8}, hello[9:]...))),
		// Handshakes: another client's Initial, its cookie, the first client's
		// retransmitted Initial, more clients than MaxSessions, forged and
		// missing cookies, short Initials and unknown versions.
		fzInput(fzRecord(1, fzInitial(any, c2, nil)), fzRecord(1, fzInitial(any, c2, fzCookie)),
			fzRecord(0, fzInitial(any, fzClientID, fzCookie)),
			fzRecord(2, fzInitial(any, c3, fzCookie)), fzRecord(3, fzInitial(any, c4, fzCookie))),
		fzInput(fzRecord(2, fzInitial(any, c3, forged)), fzRecord(2, fzInitial(any, c3, nil)[:1199]),
			fzRecord(2, badVersion), fzRecord(2, badVersion[:100])),
		fzInput(fzRecord(0, retryToServer), fzRecord(0, acceptToServer), fzRecord(0, reservedType)),
	}
	// Truncated variants of single packets.
	for _, p := range [][]byte{hello, fzShort(tb, 64, ack(0, 3), &wire.NakFrame{Ranges: []wire.AckRange{{Smallest: 1, Largest: 2}}}),
		fzShort(tb, 1, &wire.CloseFrame{ErrorCode: 4, Reason: []byte("reason")}), fzInitial(any, c2, fzCookie)} {
		for _, n := range []int{0, 1, 9, 10, 11, 21, 22, len(p) - 1} {
			if n < len(p) {
				seeds = append(seeds, fzInput(fzRecord(0, p[:n])))
			}
		}
	}
	return seeds
}

// FuzzEndpointReceive feeds arbitrary datagrams from several sources to a
// listener endpoint that holds an established session, as its receive loop
// would, with an application that accepts, echoes and closes streams. No input
// may panic, hang, drop a datagram without counting it, or take a session,
// stream or buffer beyond its configured limit.
//
// An execution takes ~150 µs (a handshake and a session goroutine each), so
// the default minimisation of every new input (60 s) looks like a stall: run
// with -fuzzminimizetime=100x, e.g.
// go test -run '^$' -fuzz FuzzEndpointReceive -fuzztime 20s -fuzzminimizetime 100x ./reliable/
func FuzzEndpointReceive(f *testing.F) {
	for _, s := range fzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		defer fuzzWatchdog("FuzzEndpointReceive").Stop()
		h := newFzHarness(t)
		defer h.close()
		for n := 0; len(in) >= 3 && n < 64; n++ {
			ctl, size := in[0], int(binary.BigEndian.Uint16(in[1:3]))
			in = in[3:]
			size = min(size, len(in))
			h.feed(ctl, in[:size])
			in = in[size:]
		}
	})
}

// fuzzWatchdog makes a hang inside the endpoint fail the input instead of
// stalling the fuzzer: it panics with every goroutine's stack if not stopped
// within 10 s.
func fuzzWatchdog(target string) *time.Timer {
	return time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		panic(target + ": input still running after 10s:\n" + string(buf[:runtime.Stack(buf, true)]))
	})
}

// sessionErrCode returns the code the established session ended with, or -1.
func (h *fzHarness) sessionErrCode() int64 {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	var se *SessionError
	if errors.As(h.s.err, &se) {
		return int64(se.Code)
	}
	return -1
}

// fzSub puts the established session's ID into a packet built with fzSessionID.
func fzSub(h *fzHarness, b []byte) []byte {
	copy(b[1:], h.s.localID[:])
	return b
}

// TestResetStreamFinalSize: a RESET_STREAM's final size counts like data
// (docs/PROTOCOL.md §8.8) and may not contradict what the stream already
// received (§8.1). Found by FuzzEndpointReceive.
func TestResetStreamFinalSize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		final uint64
		fin   bool
		code  int64
	}{
		{"beyond the stream window", 6192, false, int64(CodeFlowControl)},
		{"below received data", 2, false, int64(CodeProtocol)},
		{"differs from FIN", 100, true, int64(CodeProtocol)},
		{"at the FIN", 5, true, -1},
		{"within the window", 4000, false, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFzHarness(t)
			defer h.close()
			d := &wire.StreamFrame{StreamID: 0, Data: []byte("hello"), HasLen: true, Fin: tc.fin}
			h.deliver(fzSub(h, fzShort(t, 0, d)), fzClient)
			h.deliver(fzSub(h, fzShort(t, 1, &wire.ResetStreamFrame{StreamID: 0, ErrorCode: 1, FinalSize: tc.final})), fzClient)
			if c := h.sessionErrCode(); c != tc.code {
				t.Fatalf("RESET_STREAM final size %d after 5 bytes (fin %v), stream window %d: session error code %d, want %d (-1: open)",
					tc.final, tc.fin, h.cfg.StreamReceiveWindow, c, tc.code)
			}
		})
	}
}

// TestAcceptQueueDropsSurviveSessionEnd: streams refused for a full accept
// backlog stay counted in the listener's Stats after their session ended.
func TestAcceptQueueDropsSurviveSessionEnd(t *testing.T) {
	h := newFzHarness(t)
	defer h.close()
	// Data on the peer's streams 0..14 (8 streams), beyond the accept
	// backlog of 4; nobody accepts.
	var frames []wire.Frame
	for id := uint64(0); id <= 14; id += 2 {
		frames = append(frames, &wire.StreamFrame{StreamID: id, Data: []byte("x"), HasLen: true})
	}
	h.deliver(fzSub(h, fzShort(t, 0, frames...)), fzClient)
	before := h.l.Stats().Counters[CounterDropsAcceptQueue]
	if before == 0 {
		t.Fatalf("no stream refused with a full accept backlog")
	}
	h.s.mu.Lock()
	h.s.closeLocked(&SessionError{Code: CodeApplication}, false, time.Now())
	h.s.mu.Unlock()
	h.s.wakeSender()
	<-h.s.done
	if after := h.l.Stats().Counters[CounterDropsAcceptQueue]; after != before {
		t.Fatalf("Listener.Stats().Counters[CounterDropsAcceptQueue] = %d while the session lived, %d after it ended", before, after)
	}
}

// TestStreamGapsBounded: a peer that sends a stream's bytes one at a time,
// each after a gap, cannot make the receiver track more than a bounded number
// of spans (each frame costs time linear in them on the receive loop).
// Found by review: before the bound, 500 such datagrams made 87,000 spans
// and each further datagram took 50 ms.
func TestStreamGapsBounded(t *testing.T) {
	h := newFzHarness(t)
	defer h.close()
	cfg, _ := (&Config{}).populate() // the default 1 MiB stream window
	h.s.mu.Lock()
	h.s.cfg = cfg
	h.s.recvMaxData = uint64(cfg.SessionReceiveWindow)
	h.s.mu.Unlock()
	off := uint64(cfg.StreamReceiveWindow) - 2 // descending: each insert goes to the front
	spans := 0
	for pn := uint64(0); pn < 100 && h.s.Err() == nil; pn++ {
		b := fzShort(t, pn)
		for len(b) < 1400 {
			f := &wire.StreamFrame{StreamID: 0, Offset: off, Data: []byte{'x'}, HasLen: true}
			b, _ = f.Append(b)
			off -= 2
		}
		h.deliver(fzSub(h, b), fzClient)
		h.s.mu.Lock()
		if st := h.s.streams[0]; st != nil {
			spans = max(spans, len(st.recvd.s))
		}
		h.s.mu.Unlock()
	}
	t.Logf("at most %d spans; session: %v", spans, h.s.Err())
	if spans > 1000 {
		t.Fatalf("stream 0 tracked %d received spans", spans)
	}
}
