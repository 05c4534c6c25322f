package wire

// FrameType is the first byte of a frame (docs/PROTOCOL.md §7).
type FrameType uint8

// Frame types. STREAM frames use 0x10..0x13: bit 0x01 is FIN, bit 0x02 says
// an explicit length follows the offset.
const (
	FramePadding       FrameType = 0x00
	FramePing          FrameType = 0x01
	FrameAck           FrameType = 0x02
	FrameNak           FrameType = 0x03
	FrameMaxData       FrameType = 0x04
	FrameMaxStreamData FrameType = 0x05
	FrameMaxStreams    FrameType = 0x06
	FrameResetStream   FrameType = 0x07
	FrameStopSending   FrameType = 0x08
	FrameClose         FrameType = 0x09
	FrameStream        FrameType = 0x10
	streamFrameFin               = 0x01
	streamFrameLen               = 0x02
)

// Frame is any frame of an established session's packet.
type Frame interface {
	// Append appends the frame's encoding to b.
	Append(b []byte) ([]byte, error)
	// Length is the exact number of bytes Append adds.
	Length() int
}

// parsedFrame is a frame the FrameParser decodes in place: parse reads it
// from b (type byte included) and returns the bytes it took.
type parsedFrame interface {
	Frame
	parse(b []byte) (int, error)
}

// FrameParser parses the frames of one packet after another without
// allocating: the frames it returns point into the parser and into the packet
// and are valid until the next call to ParseNext.
type FrameParser struct {
	ping   PingFrame
	ack    AckFrame
	nak    NakFrame
	maxD   MaxDataFrame
	maxSD  MaxStreamDataFrame
	maxS   MaxStreamsFrame
	reset  ResetStreamFrame
	stop   StopSendingFrame
	close  CloseFrame
	stream StreamFrame
}

// ParseNext parses the next frame at the start of b. PADDING bytes are skipped;
// if only padding remains, it returns a nil frame and len(b).
func (p *FrameParser) ParseNext(b []byte) (Frame, int, error) {
	skip := 0
	for skip < len(b) && b[skip] == byte(FramePadding) {
		skip++
	}
	if skip == len(b) {
		return nil, skip, nil
	}
	b = b[skip:]
	var f parsedFrame
	switch t := FrameType(b[0]); {
	case t&^(streamFrameFin|streamFrameLen) == FrameStream:
		f = &p.stream
	case t == FramePing:
		f = &p.ping
	case t == FrameAck:
		f = &p.ack
	case t == FrameNak:
		f = &p.nak
	case t == FrameMaxData:
		f = &p.maxD
	case t == FrameMaxStreamData:
		f = &p.maxSD
	case t == FrameMaxStreams:
		f = &p.maxS
	case t == FrameResetStream:
		f = &p.reset
	case t == FrameStopSending:
		f = &p.stop
	case t == FrameClose:
		f = &p.close
	default:
		return nil, 0, &FormatError{What: "frame type", Value: uint64(t), Why: "unknown frame type"}
	}
	n, err := f.parse(b)
	if err != nil {
		return nil, 0, err
	}
	return f, skip + n, nil
}

// PingFrame elicits an acknowledgement; it carries nothing (docs/PROTOCOL.md §7.2).
type PingFrame struct{}

// Append appends the frame.
func (f *PingFrame) Append(b []byte) ([]byte, error) { return append(b, byte(FramePing)), nil }

// Length is 1.
func (f *PingFrame) Length() int { return 1 }

func (f *PingFrame) parse([]byte) (int, error) { return 1, nil }

// parseVarints reads len(dst) varints after the type byte, naming the frame in errors.
func parseVarints(b []byte, what string, dst ...*uint64) (int, error) {
	off := 1
	for _, d := range dst {
		v, n := ReadVarint(b[off:])
		if n == 0 {
			return 0, truncated(what, off+1, len(b))
		}
		*d = v
		off += n
	}
	return off, nil
}

// appendVarintFrame appends a frame of type t whose fields are the varints
// vs; if one exceeds 2^62-1 it appends nothing and names what.
func appendVarintFrame(b []byte, t FrameType, what string, vs ...uint64) ([]byte, error) {
	for _, v := range vs {
		if err := checkVarint(what, v); err != nil {
			return b, err
		}
	}
	b = append(b, byte(t))
	for _, v := range vs {
		b = AppendVarint(b, v)
	}
	return b, nil
}

// varintFrameLen is the encoded size of a frame of varint fields vs.
func varintFrameLen(vs ...uint64) int {
	n := 1
	for _, v := range vs {
		n += VarintLen(v)
	}
	return n
}

// parseVarintPair reads the two varints of an ACK or NAK range at b[off:]
// and returns the offset after them, naming what in errors.
func parseVarintPair(b []byte, off int, what string) (x, y uint64, end int, err error) {
	x, n := ReadVarint(b[off:])
	if n == 0 {
		return 0, 0, 0, truncated(what, off+1, len(b))
	}
	off += n
	y, n = ReadVarint(b[off:])
	if n == 0 {
		return 0, 0, 0, truncated(what, off+1, len(b))
	}
	return x, y, off + n, nil
}

func checkVarint(what string, v uint64) error {
	if v > MaxVarint {
		return &FormatError{What: what, Value: v, Why: "exceeds 2^62-1"}
	}
	return nil
}
