package reliable

import "github.com/raptormq/raptor/wire"

// Opening into the receive ring (issue #16 item 2, docs/ARCHITECTURE.md
// "Stream buffers and copies per byte"): when a stream's reader is behind,
// a protected packet of its bulk data is decrypted by the AEAD straight into
// the stream's receive ring, where the data is to be held, instead of in
// place in the datagram and then copied into the ring. The receive side then
// copies a byte once (the Read out of the ring), as the send side does.
//
// Where the data goes is known only after decryption, so the session
// guesses from the last packet (rxGuess): a packet whose payload was frames
// of k bytes, the last of them a STREAM frame whose data ran to the end,
// delivered in order, is likely followed by one of the same shape whose
// data continues where that one's ended. If the stream's ring holds that
// place without wrapping or growing, and nothing received lies beyond it,
// the AEAD writes the whole plaintext to ring[pos-k : pos+n], pos being
// where the data starts: the k bytes of frames land in front of the data,
// in place of ring bytes (held, unread data) that are saved first and put
// back right after (all under Session.mu, which every use of the ring
// holds). The frames are then moved to the datagram, where they would have
// been decrypted in place, and checked against the guess: if the packet is
// of the guessed shape its data stays where it is and onStreamFrameLocked
// takes it from the ring (rxIn) without copying; if not, the rest of the
// plaintext is copied to the datagram too and the packet is handled as any
// other. Bytes the AEAD wrote beyond the data received were not held by
// anything, and a packet that fails authentication leaves the ring as it
// was (its saved bytes are put back).

// rxGuess is what the last packet's shape predicts of the next one.
type rxGuess struct {
	valid  bool
	stream uint64 // the stream whose data ended the last packet
	next   uint64 // where that data ended
	k      int    // plaintext bytes of frames before the data
	// The shape of the packet before the last: the guess is made only when
	// two packets in a row had the same (a guess that misses costs a copy).
	prevStream uint64
	prevK      int
}

// rxTarget is where openShortInto is to write the next packet's plaintext:
// ring[pos-k : pos+n] for a plaintext of k+n bytes, n <= room.
type rxTarget struct {
	ring []byte
	pos  int    // where the guessed data starts in ring
	k    int    // bytes of frames before it
	room uint64 // data bytes the ring holds from pos without growing
	// Set by dst: the plaintext's place, and the ring bytes it covers
	// in front of the data.
	out  []byte
	save [tailPrefix]byte
}

// dst returns an empty slice with capacity for exactly n bytes of plaintext
// at the target, saving the ring bytes the frames will cover, or nil (open
// in place) when t is nil or the ring has no room for n-k data bytes there.
func (t *rxTarget) dst(n int) []byte {
	if t == nil || t.ring == nil {
		return nil
	}
	d := n - t.k
	if d <= 0 || uint64(d) > t.room || t.pos+d > len(t.ring) {
		return nil
	}
	t.out = t.ring[t.pos-t.k : t.pos+d : t.pos+d]
	copy(t.save[:t.k], t.out[:t.k])
	return t.out[:0]
}

// undo puts back the ring bytes that dst saved: the frames in front of the
// data have been moved out, or the packet failed to open.
func (t *rxTarget) undo() {
	if t != nil && t.out != nil {
		copy(t.out[:t.k], t.save[:t.k])
	}
}

// rxIn marks the STREAM frame of the packet being handled whose data is
// already in its stream's receive ring: the frame parsed from the datagram
// has the right offset and length but its data bytes there are not the
// plaintext (src is where they would be).
type rxIn struct {
	st   *Stream
	ring []byte // st.recvBuf when the packet opened
	src  *byte
	off  uint64
	n    int
}

// rxTargetLocked prepares s.rxT for the next packet from s.rxGuess, or
// returns nil when the guess cannot be used: no guess, the stream gone or
// without a ring, a Read waiting for the bytes (they go to its buffer),
// data received beyond the guessed place (the place must be where the
// highest data held ends, after a gap or not), or too few ring bytes in
// front of it for the frames.
func (s *Session) rxTargetLocked() *rxTarget {
	g := &s.rxGuess
	if !g.valid {
		return nil
	}
	st := s.streams[g.stream]
	if st == nil || st.recvBuf == nil || st.direct != nil || st.readErr != nil || st.readClosed ||
		st.highestHeldLocked() != g.next {
		return nil
	}
	held := g.next - st.readOff
	if held >= uint64(len(st.recvBuf)) {
		return nil
	}
	pos := ringPos(st.recvBuf, g.next-st.recvRing)
	if pos < g.k {
		return nil
	}
	s.rxT.ring, s.rxT.pos, s.rxT.k, s.rxT.room, s.rxT.out = st.recvBuf, pos, g.k, uint64(len(st.recvBuf))-held, nil
	return &s.rxT
}

// rxLandLocked finishes a packet that t had the AEAD open into a stream's
// ring: plain is where the plaintext would have been decrypted in place (in
// the datagram, after the header). The frames in front of the data move
// there and the ring bytes they covered are put back; if the packet is of
// the guessed shape, its data stays in the ring (s.rxIn marks it),
// otherwise it is copied to plain as well.
func (s *Session) rxLandLocked(t *rxTarget, plain []byte, fp *wire.FrameParser) {
	r := t.out
	t.out = nil
	copy(plain[:t.k], r[:t.k])
	copy(r[:t.k], t.save[:t.k])
	g := s.rxGuess
	if sf := lastStreamFrame(plain, t.k, fp); sf != nil && sf.StreamID == g.stream && sf.Offset == g.next {
		s.rxIn = rxIn{st: s.streams[g.stream], ring: t.ring, src: &plain[t.k], off: sf.Offset, n: len(plain) - t.k}
		s.openedInRing++
		return
	}
	copy(plain[t.k:], r[t.k:])
	s.rxMisses++
}

// lastStreamFrame parses payload and returns its STREAM frame if the
// payload is of the shape the ring takes: frames that touch no stream's
// data (ACK, NAK, PADDING, PING, MAX_DATA, MAX_STREAM_DATA) ending at k,
// then one STREAM frame whose header ends at k and whose data runs to the
// end. The bytes after k are not read. The frame is fp's, valid until fp
// parses again.
func lastStreamFrame(payload []byte, k int, fp *wire.FrameParser) *wire.StreamFrame {
	for at := 0; at < k; {
		f, n, err := fp.ParseNext(payload[at:])
		if err != nil {
			return nil
		}
		switch f := f.(type) {
		case nil, *wire.AckFrame, *wire.NakFrame, *wire.PingFrame, *wire.MaxDataFrame, *wire.MaxStreamDataFrame:
		case *wire.StreamFrame:
			if len(f.Data) == 0 || &f.Data[0] != &payload[k] || at+n != len(payload) {
				return nil
			}
			return f
		default:
			return nil
		}
		at += n
	}
	return nil
}

// rxNoteLocked records the shape of a packet just handled for the next
// one's guess: its payload's last frame was STREAM frame (id, off) with n
// data bytes starting at k, the frames before it of the kinds
// lastStreamFrame takes (shapeOK). The guess holds only if those bytes were
// taken into the stream's ring as the highest it holds (in order or beyond
// a gap).
func (s *Session) rxNoteLocked(shapeOK bool, id, off uint64, k, n int) {
	g := &s.rxGuess
	same := g.prevStream == id && g.prevK == k
	g.valid, g.prevStream, g.prevK = false, id, k
	if !shapeOK || n == 0 || k > tailPrefix || s.prot.keys == nil {
		g.prevK = -1
		return
	}
	if !same {
		return
	}
	st := s.streams[id]
	if st == nil || st.recvBuf == nil || st.highestHeldLocked() != off+uint64(n) {
		return
	}
	g.valid, g.stream, g.next, g.k = true, id, off+uint64(n), k
}

// rxDataLocked returns where the data of STREAM frame (off, data) on st is
// to be taken from: the stream's ring if the packet opened into it (rxIn),
// else data itself.
func (s *Session) rxDataLocked(st *Stream, off uint64, data []byte) ([]byte, bool) {
	m := &s.rxIn
	if m.st == nil || m.st != st || len(data) == 0 || &data[0] != m.src || off != m.off || len(data) != m.n {
		return data, false
	}
	ring := m.ring
	*m = rxIn{}
	if len(st.recvBuf) == 0 || &st.recvBuf[0] != &ring[0] {
		// The ring was replaced between opening and now: nothing the frames
		// before the data (lastStreamFrame) can do.
		panic("raptor: internal error: a stream's receive ring changed under a packet opened into it")
	}
	pos := ringPos(st.recvBuf, off-st.recvRing)
	return st.recvBuf[pos : pos+len(data)], true
}
