package wire

// FrameNewToken carries an address-validation token from a server to its
// client in an established session (docs/PROTOCOL.md §7.11).
const FrameNewToken FrameType = 0x0b

// NewTokenFrame gives the client a token to put in the Initial of a later
// handshake with the same server, so that the server admits it without a
// Retry round trip, like QUIC's NEW_TOKEN frame (RFC 9000 §8.1.3, §19.7).
// Only the issuing server interprets the token. It is ack-eliciting and sent
// only by a server in a short-header packet.
type NewTokenFrame struct {
	Token []byte // 1..MaxTokenLen bytes; aliases the packet after parsing
}

// Append appends the frame: type, token length, token.
func (f *NewTokenFrame) Append(b []byte) ([]byte, error) {
	if len(f.Token) == 0 || len(f.Token) > MaxTokenLen {
		return b, &FormatError{What: "NEW_TOKEN token length", Value: uint64(len(f.Token)), Why: "must be 1..256"}
	}
	return appendToken(append(b, byte(FrameNewToken)), f.Token), nil
}

// Length is the encoded size.
func (f *NewTokenFrame) Length() int {
	return 1 + VarintLen(uint64(len(f.Token))) + len(f.Token)
}

func (f *NewTokenFrame) parse(b []byte) (int, error) {
	tok, n, err := parseToken(b[1:])
	if err != nil {
		return 0, err
	}
	if len(tok) == 0 {
		return 0, &FormatError{What: "NEW_TOKEN token length", Value: 0, Why: "must not be empty"}
	}
	f.Token = tok
	return 1 + n, nil
}

// ParseNewTokenFrame parses a NEW_TOKEN frame at the start of b. Token
// aliases b.
func ParseNewTokenFrame(b []byte) (NewTokenFrame, int, error) {
	var f NewTokenFrame
	if len(b) == 0 {
		return f, 0, truncated("NEW_TOKEN frame", 1, 0)
	}
	if FrameType(b[0]) != FrameNewToken {
		return f, 0, &FormatError{What: "NEW_TOKEN frame type", Value: uint64(b[0]), Why: "not 0x0b"}
	}
	n, err := f.parse(b)
	if err != nil {
		return NewTokenFrame{}, 0, err
	}
	return f, n, nil
}
