package wire

// MaxNakRanges bounds the ranges one NAK frame carries (docs/PROTOCOL.md §7.4).
const MaxNakRanges = 32

// NakFrame is a negative acknowledgement: the receiver saw a gap and names the
// packet numbers it is missing, so the sender retransmits at once instead of
// waiting for a timer (docs/PROTOCOL.md §7.4). Ranges ascend and do not overlap.
type NakFrame struct {
	Ranges []AckRange
}

func (f *NakFrame) validate() error {
	if len(f.Ranges) == 0 || len(f.Ranges) > MaxNakRanges {
		return &FormatError{What: "NAK range count", Value: uint64(len(f.Ranges)), Why: "must be 1..32"}
	}
	for i, r := range f.Ranges {
		if r.Smallest > r.Largest || r.Largest > MaxPacketNumber {
			return &FormatError{What: "NAK range", Value: r.Smallest, Why: "smallest above largest or beyond 2^62-1"}
		}
		if i > 0 && r.Smallest <= f.Ranges[i-1].Largest {
			return &FormatError{What: "NAK range", Value: r.Smallest, Why: "ranges must ascend without overlap"}
		}
	}
	return nil
}

// Append appends the frame: type, range count, then (first missing, count - 1)
// for each range.
func (f *NakFrame) Append(b []byte) ([]byte, error) {
	if err := f.validate(); err != nil {
		return b, err
	}
	b = append(b, byte(FrameNak))
	b = AppendVarint(b, uint64(len(f.Ranges)))
	for _, r := range f.Ranges {
		b = AppendVarint(b, r.Smallest)
		b = AppendVarint(b, r.Largest-r.Smallest)
	}
	return b, nil
}

// Length is the encoded size.
func (f *NakFrame) Length() int {
	n := 1 + VarintLen(uint64(len(f.Ranges)))
	for _, r := range f.Ranges {
		n += VarintLen(r.Smallest) + VarintLen(r.Largest-r.Smallest)
	}
	return n
}

func (f *NakFrame) parse(b []byte) (int, error) {
	var count uint64
	off, err := parseVarints(b, "NAK frame", &count)
	if err != nil {
		return 0, err
	}
	if count == 0 || count > MaxNakRanges {
		return 0, &FormatError{What: "NAK range count", Value: count, Why: "must be 1..32"}
	}
	f.Ranges = f.Ranges[:0]
	for i := uint64(0); i < count; i++ {
		lo, l, end, err := parseVarintPair(b, off, "NAK frame range")
		if err != nil {
			return 0, err
		}
		off = end
		if l > MaxPacketNumber-lo {
			return 0, &FormatError{What: "NAK range length", Value: l, Why: "goes beyond 2^62-1"}
		}
		if len(f.Ranges) > 0 && lo <= f.Ranges[len(f.Ranges)-1].Largest {
			return 0, &FormatError{What: "NAK range", Value: lo, Why: "ranges must ascend without overlap"}
		}
		f.Ranges = append(f.Ranges, AckRange{Smallest: lo, Largest: lo + l})
	}
	return off, nil
}
