package wire

// MaxAckRanges bounds the ranges one ACK frame carries: the encoder keeps the
// newest ranges and the parser rejects more (docs/PROTOCOL.md §7.3).
const MaxAckRanges = 64

// AckRange is a closed interval of packet numbers, Smallest <= Largest.
type AckRange struct{ Smallest, Largest uint64 }

// AckFrame acknowledges packet numbers selectively (docs/PROTOCOL.md §7.3).
// Ranges are ordered from the largest packet numbers down and do not touch.
type AckFrame struct {
	AckDelay uint64 // microseconds between receiving Ranges[0].Largest and sending this
	Ranges   []AckRange
}

// Largest is the largest acknowledged packet number.
func (f *AckFrame) Largest() uint64 { return f.Ranges[0].Largest }

// Acks reports whether pn is acknowledged by the frame.
func (f *AckFrame) Acks(pn uint64) bool {
	for _, r := range f.Ranges {
		if pn > r.Largest {
			return false
		}
		if pn >= r.Smallest {
			return true
		}
	}
	return false
}

// encoded returns the ranges Append encodes: the newest MaxAckRanges.
func (f *AckFrame) encoded() []AckRange {
	if len(f.Ranges) > MaxAckRanges {
		return f.Ranges[:MaxAckRanges]
	}
	return f.Ranges
}

func (f *AckFrame) validate() error {
	if len(f.Ranges) == 0 {
		return &FormatError{What: "ACK range count", Value: 0, Why: "an ACK frame needs a range"}
	}
	for i, r := range f.encoded() {
		if r.Smallest > r.Largest || r.Largest > MaxPacketNumber {
			return &FormatError{What: "ACK range", Value: r.Largest, Why: "smallest above largest or beyond 2^62-1"}
		}
		if i > 0 && r.Largest+2 > f.Ranges[i-1].Smallest {
			return &FormatError{What: "ACK range", Value: r.Largest, Why: "ranges must descend with a gap of at least one"}
		}
	}
	return checkVarint("ACK delay", f.AckDelay)
}

// Append appends the frame: type, largest, ack delay, range count - 1,
// first range length, then (gap, length) for every further range. Of more
// than MaxAckRanges ranges only the first (newest) MaxAckRanges are encoded.
func (f *AckFrame) Append(b []byte) ([]byte, error) {
	if err := f.validate(); err != nil {
		return b, err
	}
	ranges := f.encoded()
	r0 := ranges[0]
	b = append(b, byte(FrameAck))
	b = AppendVarint(b, r0.Largest)
	b = AppendVarint(b, f.AckDelay)
	b = AppendVarint(b, uint64(len(ranges)-1))
	b = AppendVarint(b, r0.Largest-r0.Smallest)
	prev := r0.Smallest
	for _, r := range ranges[1:] {
		b = AppendVarint(b, prev-r.Largest-2)
		b = AppendVarint(b, r.Largest-r.Smallest)
		prev = r.Smallest
	}
	return b, nil
}

// Length is the encoded size.
func (f *AckFrame) Length() int {
	if len(f.Ranges) == 0 {
		return 0
	}
	ranges := f.encoded()
	r0 := ranges[0]
	n := 1 + VarintLen(r0.Largest) + VarintLen(f.AckDelay) + VarintLen(uint64(len(ranges)-1)) + VarintLen(r0.Largest-r0.Smallest)
	prev := r0.Smallest
	for _, r := range ranges[1:] {
		n += VarintLen(prev-r.Largest-2) + VarintLen(r.Largest-r.Smallest)
		prev = r.Smallest
	}
	return n
}

// parse decodes the frame from b (type byte included), reusing f.Ranges.
func (f *AckFrame) parse(b []byte) (int, error) {
	var largest, delay, count, first uint64
	off, err := parseVarints(b, "ACK frame", &largest, &delay, &count, &first)
	if err != nil {
		return 0, err
	}
	if count >= MaxAckRanges {
		return 0, &FormatError{What: "ACK range count", Value: count + 1, Why: "more than 64"}
	}
	if first > largest {
		return 0, &FormatError{What: "ACK first range", Value: first, Why: "longer than the largest packet number"}
	}
	f.AckDelay = delay
	f.Ranges = append(f.Ranges[:0], AckRange{Smallest: largest - first, Largest: largest})
	smallest := largest - first
	for i := uint64(0); i < count; i++ {
		gap, length, end, err := parseVarintPair(b, off, "ACK frame range")
		if err != nil {
			return 0, err
		}
		off = end
		if gap+2 > smallest {
			return 0, &FormatError{What: "ACK range gap", Value: gap, Why: "goes below packet number 0"}
		}
		hi := smallest - gap - 2
		if length > hi {
			return 0, &FormatError{What: "ACK range length", Value: length, Why: "goes below packet number 0"}
		}
		f.Ranges = append(f.Ranges, AckRange{Smallest: hi - length, Largest: hi})
		smallest = hi - length
	}
	return off, nil
}
