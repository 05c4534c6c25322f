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
	var (
		f   Frame
		n   int
		err error
	)
	switch t := FrameType(b[0]); {
	case t&^(streamFrameFin|streamFrameLen) == FrameStream:
		n, err = p.stream.parse(b)
		f = &p.stream
	case t == FramePing:
		f, n = &p.ping, 1
	case t == FrameAck:
		n, err = p.ack.parse(b)
		f = &p.ack
	case t == FrameNak:
		n, err = p.nak.parse(b)
		f = &p.nak
	case t == FrameMaxData:
		n, err = p.maxD.parse(b)
		f = &p.maxD
	case t == FrameMaxStreamData:
		n, err = p.maxSD.parse(b)
		f = &p.maxSD
	case t == FrameMaxStreams:
		n, err = p.maxS.parse(b)
		f = &p.maxS
	case t == FrameResetStream:
		n, err = p.reset.parse(b)
		f = &p.reset
	case t == FrameStopSending:
		n, err = p.stop.parse(b)
		f = &p.stop
	case t == FrameClose:
		n, err = p.close.parse(b)
		f = &p.close
	default:
		return nil, 0, &FormatError{What: "frame type", Value: uint64(t), Why: "unknown frame type"}
	}
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

func checkVarint(what string, v uint64) error {
	if v > MaxVarint {
		return &FormatError{What: what, Value: v, Why: "exceeds 2^62-1"}
	}
	return nil
}
