package wire

// MaxStreamOffset is the largest offset plus length a stream may reach.
const MaxStreamOffset = MaxVarint

// StreamFrame carries bytes of one stream at an offset (docs/PROTOCOL.md §7.1).
// Data aliases the packet it was parsed from.
type StreamFrame struct {
	StreamID uint64
	Offset   uint64
	Fin      bool // the stream ends after this frame's data
	HasLen   bool // encode an explicit length; otherwise data runs to the packet's end
	Data     []byte
}

// HeaderLen is the encoded size of the frame without its data.
func (f *StreamFrame) HeaderLen() int {
	n := 1 + VarintLen(f.StreamID) + VarintLen(f.Offset)
	if f.HasLen {
		n += VarintLen(uint64(len(f.Data)))
	}
	return n
}

// Length is the encoded size.
func (f *StreamFrame) Length() int { return f.HeaderLen() + len(f.Data) }

// Append appends the frame.
func (f *StreamFrame) Append(b []byte) ([]byte, error) {
	b, err := f.AppendHeader(b)
	if err != nil {
		return b, err
	}
	return append(b, f.Data...), nil
}

// AppendHeader appends the frame without its data: the caller puts the
// len(f.Data) bytes of f.Data right after them, by other means than a copy
// if it has one (an AEAD sealing the packet from where the bytes are held).
func (f *StreamFrame) AppendHeader(b []byte) ([]byte, error) {
	if err := checkVarint("stream ID", f.StreamID); err != nil {
		return b, err
	}
	if f.Offset > MaxStreamOffset || uint64(len(f.Data)) > MaxStreamOffset-f.Offset {
		return b, &FormatError{What: "stream offset", Value: f.Offset, Why: "offset plus length exceeds 2^62-1"}
	}
	t := byte(FrameStream)
	if f.Fin {
		t |= streamFrameFin
	}
	if f.HasLen {
		t |= streamFrameLen
	}
	b = append(b, t)
	b = AppendVarint(b, f.StreamID)
	b = AppendVarint(b, f.Offset)
	if f.HasLen {
		b = AppendVarint(b, uint64(len(f.Data)))
	}
	return b, nil
}

func (f *StreamFrame) parse(b []byte) (int, error) {
	t := b[0]
	f.Fin = t&streamFrameFin != 0
	f.HasLen = t&streamFrameLen != 0
	off, err := parseVarints(b, "STREAM frame", &f.StreamID, &f.Offset)
	if err != nil {
		return 0, err
	}
	l := uint64(len(b) - off)
	if f.HasLen {
		v, n := ReadVarint(b[off:])
		if n == 0 {
			return 0, truncated("STREAM frame length", off+1, len(b))
		}
		off += n
		if v > uint64(len(b)-off) {
			return 0, truncated("STREAM frame data", off+int(min(v, 1<<20)), len(b))
		}
		l = v
	}
	if f.Offset > MaxStreamOffset-l {
		return 0, &FormatError{What: "stream offset", Value: f.Offset, Why: "offset plus length exceeds 2^62-1"}
	}
	f.Data = b[off : off+int(l)]
	return off + int(l), nil
}
