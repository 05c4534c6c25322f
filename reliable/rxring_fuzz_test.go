package reliable

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/raptormq/raptor/wire"
)

// protectForTest gives the established session s of a fuzz harness 1-RTT
// keys (AES-128-GCM, fixed secrets) in place of plaintext, and returns the
// peer's, which seal what the test sends it.
func protectForTest(tb testing.TB, s *Session) *appKeys {
	secretA, secretB := bytes.Repeat([]byte{0xaa}, 32), bytes.Repeat([]byte{0xbb}, 32)
	peer, err := newAppKeys(tls.TLS_AES_128_GCM_SHA256, secretA, secretB, 1<<30)
	if err != nil {
		tb.Fatal(err)
	}
	own, err := newAppKeys(tls.TLS_AES_128_GCM_SHA256, secretB, secretA, 1<<30)
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.prot.plaintext, s.prot.keys = false, own
	s.mu.Unlock()
	return peer
}

// fzTwins are two fuzz harnesses fed the same packets: one whose session
// is protected (so packets can open into a stream's receive ring) and one
// in plaintext (they never do). Opening into the ring must change nothing a
// peer or the application can see: the twins must end in the same state.
type fzTwins struct {
	t          testing.TB
	prot, text *fzHarness
	peer       *appKeys
	pn         uint64
}

func newFzTwins(t testing.TB) *fzTwins {
	tw := &fzTwins{t: t, prot: newFzHarness(t), text: newFzHarness(t)}
	tw.peer = protectForTest(t, tw.prot.s)
	return tw
}

func (tw *fzTwins) close() {
	tw.prot.close()
	tw.text.close()
}

// send delivers a short-header packet of payload to both twins (padded as
// sealing pads it, so both see the same frames); with flip, a bit of the
// sealed packet is flipped and only the protected twin gets it (it must
// fail authentication there and change nothing).
//
// A packet that holds an ACK or NAK frame is not sent: whether it is valid
// depends on what the session has sent, which its run loop does in its own
// time, so the twins could differ for that alone.
func (tw *fzTwins) send(payload []byte, flip int) {
	pn := tw.pn
	hdr := wire.ShortHeader{DstID: tw.text.s.localID, PacketNumber: pn}
	b := hdr.Append(make([]byte, 0, len(payload)+64))
	hl := len(b)
	b = append(b, payload...)
	b = padForSample(b, wire.ShortPNOffset, hl)
	if ackFrames(b[hl:]) {
		return
	}
	tw.pn++
	if flip < 0 {
		tw.text.deliver(bytes.Clone(b), fzClient)
	}
	p := bytes.Clone(b)
	copy(p[1:], tw.prot.s.localID[:])
	p = tw.peer.sealShort(p, hl, pn)
	if flip >= 0 {
		bit := flip % (8 * len(p))
		p[bit/8] ^= 1 << (bit % 8)
	}
	tw.prot.deliver(p, fzClient)
}

// next is where stream 0's highest data held ends in the protected twin.
func (tw *fzTwins) next() (uint64, uint64) {
	s := tw.prot.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.streams[0]; st != nil {
		return st.highestHeldLocked(), st.recvMax
	}
	return 0, uint64(s.cfg.StreamReceiveWindow)
}

// continuation sends n bytes of stream 0 from where its highest data ends,
// within its window, preceded by frames of the given bytes: the packet the
// guess expects when they are the same as the last one's.
func (tw *fzTwins) continuation(n int, prefix []byte) {
	off, max := tw.next()
	if off >= max {
		return
	}
	n = int(min(uint64(n), max-off))
	d := make([]byte, n)
	for i := range d {
		d[i] = byte((off + uint64(i)) * 7)
	}
	f := wire.StreamFrame{StreamID: 0, Offset: off, HasLen: true, Data: d}
	b, err := f.Append(append([]byte(nil), prefix...))
	if err != nil {
		tw.t.Fatal(err)
	}
	tw.send(b, -1)
}

// read reads up to n bytes from every stream of both twins, as an
// application behind on them would now and then.
func (tw *fzTwins) read(n int) {
	buf := make([]byte, n)
	for _, h := range []*fzHarness{tw.prot, tw.text} {
		s := h.s
		s.mu.Lock()
		for _, st := range s.streams {
			st.readLocked(buf)
		}
		s.mu.Unlock()
	}
}

// state describes what a peer and the application can tell of a twin's
// session: its error, and for every stream the read offset, the spans held
// and their bytes, the flow-control state and FIN.
func fzState(s *Session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "err %v\n", s.err)
	for id := uint64(0); id < 64; id++ {
		st := s.streams[id]
		if st == nil {
			continue
		}
		fmt.Fprintf(&b, "stream %d: read %d highest %d max %d fin %v/%d spans %v\n", id, st.readOff, st.highestRecv, st.recvMax, st.finRecv, st.finalSize, st.recvd.s)
		for _, sp := range st.recvd.s {
			lo := max(sp.lo, st.readOff)
			if sp.hi <= lo || st.recvBuf == nil {
				continue
			}
			p := make([]byte, sp.hi-lo)
			ringRead(st.recvBuf, lo-st.recvRing, p)
			fmt.Fprintf(&b, "  [%d,%d) % x\n", lo, sp.hi, p)
		}
	}
	return b.String()
}

// FuzzOpenIntoRing feeds the same packets, arbitrary frames between packets
// that continue stream 0 (so that the protected twin's guesses hold and
// miss), to a protected session and a plaintext one (fzTwins); some of the
// protected packets have a bit flipped. No input may panic, and the twins
// must end in the same state: opening into the ring (rxring.go) is only a
// copy saved.
//
// Packets that hold an ACK or NAK frame are skipped (fzTwins.send).
//
// Input: records of a control byte and a big-endian uint16 length, then
// that many bytes of frames. Control bit 0x01: flip bit (next two bytes)
// of the sealed packet; 0x02: a continuation of stream 0 first; 0x04: then
// one more; 0x08: read 300 bytes of every stream afterwards; 0x10: the
// continuation carries the frames as its prefix instead of a packet of its
// own.
func FuzzOpenIntoRing(f *testing.F) {
	ping := []byte{byte(wire.FramePing)}
	maxData, _ := (&wire.MaxDataFrame{Max: 1 << 20}).Append(nil)
	stream := func(off uint64, n int, hasLen bool) []byte {
		b, _ := (&wire.StreamFrame{StreamID: 0, Offset: off, HasLen: hasLen, Data: bytes.Repeat([]byte{0x5a}, n)}).Append(nil)
		return b
	}
	rec := func(ctl byte, frames ...[]byte) []byte {
		p := bytes.Join(frames, nil)
		b := []byte{ctl, 0, 0}
		binary.BigEndian.PutUint16(b[1:], uint16(len(p)))
		return append(b, p...)
	}
	f.Add(rec(0x06, ping))
	f.Add(bytes.Join([][]byte{rec(0x16, maxData), rec(0x06, ping), rec(0x0e, ping)}, nil))
	f.Add(bytes.Join([][]byte{rec(0x06, stream(1000, 200, true)), rec(0x06, stream(1200, 50, false))}, nil))
	f.Add(bytes.Join([][]byte{rec(0x07, ping, []byte{0, 5}), rec(0x06, stream(1300, 10, true), stream(1310, 10, true))}, nil))
	f.Add(bytes.Join([][]byte{rec(0x0e, stream(5000, 10, true)), rec(0x06, ping)}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		defer fuzzWatchdog("FuzzOpenIntoRing").Stop()
		tw := newFzTwins(t)
		defer tw.close()
		// Three packets of one shape: the protected twin guesses from here.
		for range 3 {
			tw.continuation(400, nil)
		}
		for n := 0; len(in) >= 3 && n < 32; n++ {
			ctl, size := in[0], int(binary.BigEndian.Uint16(in[1:3]))
			in = in[3:]
			flip := -1
			if ctl&0x01 != 0 && len(in) >= 2 {
				flip = int(binary.BigEndian.Uint16(in))
				in = in[2:]
			}
			size = min(size, len(in), 1200)
			frames := in[:size]
			in = in[size:]
			if ctl&0x02 != 0 {
				tw.continuation(300, nil)
			}
			if ctl&0x04 != 0 {
				tw.continuation(300, nil)
			}
			if ctl&0x10 != 0 && flip < 0 {
				tw.continuation(300, frames)
			} else if len(frames) > 0 {
				tw.send(frames, flip)
			}
			if ctl&0x08 != 0 {
				tw.read(300)
			}
		}
		tw.continuation(300, nil)
		if p, q := fzState(tw.prot.s), fzState(tw.text.s); p != q {
			t.Fatalf("the protected session differs from its plaintext twin:\nprotected:\n%s\nplaintext:\n%s", p, q)
		}
	})
}

// TestFuzzTwinsOpenIntoRing: the twins of FuzzOpenIntoRing do exercise
// opening into the ring (guesses that hold and that miss) and end alike.
func TestFuzzTwinsOpenIntoRing(t *testing.T) {
	tw := newFzTwins(t)
	defer tw.close()
	for i := range 12 {
		switch i % 4 {
		case 3:
			tw.continuation(200, []byte{byte(wire.FramePing)}) // another shape: a miss
		default:
			tw.continuation(200, nil)
		}
		if i%3 == 2 {
			tw.read(150)
		}
	}
	tw.send([]byte{byte(wire.FramePing)}, 77) // fails authentication
	tw.continuation(200, nil)
	if p, q := fzState(tw.prot.s), fzState(tw.text.s); p != q {
		t.Fatalf("the protected session differs from its plaintext twin:\nprotected:\n%s\nplaintext:\n%s", p, q)
	}
	s := tw.prot.s
	s.mu.Lock()
	hits, misses, auth := s.openedInRing, s.rxMisses, s.stats.c[CounterDropsAuth].Load()
	s.mu.Unlock()
	t.Logf("%d packets opened into the ring, %d guesses missed, %d failed authentication", hits, misses, auth)
	if hits == 0 || misses == 0 || auth != 1 {
		t.Fatalf("%d packets opened into the ring, %d missed, %d failed authentication: want some, some, 1", hits, misses, auth)
	}
}

// ackFrames reports whether payload holds an ACK or NAK frame, up to its
// first malformed frame (a packet the session drops whole).
func ackFrames(payload []byte) bool {
	var fp wire.FrameParser
	for b := payload; len(b) > 0; {
		f, n, err := fp.ParseNext(b)
		if err != nil {
			return false
		}
		switch f.(type) {
		case *wire.AckFrame, *wire.NakFrame:
			return true
		}
		b = b[n:]
	}
	return false
}
