package plugin

// MaxFrameSize is the largest length prefix the Kafka framing of a [Relay]
// believes; a larger or negative one switches that connection to raw mode.
const MaxFrameSize = 1 << 30

// frameCounter follows a byte stream of 4-byte big-endian length-prefixed
// frames (the Kafka wire protocol) and counts the complete ones. It never
// buffers payload; it only tracks where the next length prefix starts.
type frameCounter struct {
	hdr       [4]byte
	hdrN      int   // bytes of the current length prefix seen
	remaining int64 // payload bytes still to come in the current frame
	frames    uint64
	invalid   bool // a length prefix was out of range: framing abandoned
}

// feed advances the counter over b.
func (f *frameCounter) feed(b []byte) {
	for len(b) > 0 && !f.invalid {
		if f.remaining > 0 {
			n := int64(len(b))
			if n > f.remaining {
				n = f.remaining
			}
			f.remaining -= n
			b = b[n:]
			if f.remaining == 0 {
				f.frames++
			}
			continue
		}
		n := copy(f.hdr[f.hdrN:], b)
		f.hdrN += n
		b = b[n:]
		if f.hdrN < 4 {
			return
		}
		f.hdrN = 0
		size := int32(uint32(f.hdr[0])<<24 | uint32(f.hdr[1])<<16 | uint32(f.hdr[2])<<8 | uint32(f.hdr[3]))
		switch {
		case size < 0 || size > MaxFrameSize:
			f.invalid = true
		case size == 0:
			f.frames++
		default:
			f.remaining = int64(size)
		}
	}
}

// partial reports whether the stream stopped inside a frame.
func (f *frameCounter) partial() bool { return f.hdrN > 0 || f.remaining > 0 }
