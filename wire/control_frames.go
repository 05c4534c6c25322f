package wire

// MaxDataFrame raises the session-level flow-control limit: the peer may send
// stream bytes up to Max in total over all streams (docs/PROTOCOL.md §7.5).
type MaxDataFrame struct{ Max uint64 }

// Append appends the frame.
func (f *MaxDataFrame) Append(b []byte) ([]byte, error) {
	return appendVarintFrame(b, FrameMaxData, "MAX_DATA", f.Max)
}

// Length is the encoded size.
func (f *MaxDataFrame) Length() int { return varintFrameLen(f.Max) }

func (f *MaxDataFrame) parse(b []byte) (int, error) { return parseVarints(b, "MAX_DATA frame", &f.Max) }

// MaxStreamDataFrame raises one stream's flow-control limit to the absolute
// offset Max (docs/PROTOCOL.md §7.5).
type MaxStreamDataFrame struct{ StreamID, Max uint64 }

// Append appends the frame.
func (f *MaxStreamDataFrame) Append(b []byte) ([]byte, error) {
	return appendVarintFrame(b, FrameMaxStreamData, "MAX_STREAM_DATA stream ID or limit", f.StreamID, f.Max)
}

// Length is the encoded size.
func (f *MaxStreamDataFrame) Length() int { return varintFrameLen(f.StreamID, f.Max) }

func (f *MaxStreamDataFrame) parse(b []byte) (int, error) {
	return parseVarints(b, "MAX_STREAM_DATA frame", &f.StreamID, &f.Max)
}

// MaxStreamsFrame raises the number of streams the peer may open in total
// (docs/PROTOCOL.md §7.6).
type MaxStreamsFrame struct{ Max uint64 }

// Append appends the frame.
func (f *MaxStreamsFrame) Append(b []byte) ([]byte, error) {
	return appendVarintFrame(b, FrameMaxStreams, "MAX_STREAMS", f.Max)
}

// Length is the encoded size.
func (f *MaxStreamsFrame) Length() int { return varintFrameLen(f.Max) }

func (f *MaxStreamsFrame) parse(b []byte) (int, error) {
	return parseVarints(b, "MAX_STREAMS frame", &f.Max)
}

// ResetStreamFrame abandons the sending side of a stream: no more data will
// come and FinalSize is the stream's length (docs/PROTOCOL.md §7.7).
type ResetStreamFrame struct{ StreamID, ErrorCode, FinalSize uint64 }

// Append appends the frame.
func (f *ResetStreamFrame) Append(b []byte) ([]byte, error) {
	return appendVarintFrame(b, FrameResetStream, "RESET_STREAM field", f.StreamID, f.ErrorCode, f.FinalSize)
}

// Length is the encoded size.
func (f *ResetStreamFrame) Length() int { return varintFrameLen(f.StreamID, f.ErrorCode, f.FinalSize) }

func (f *ResetStreamFrame) parse(b []byte) (int, error) {
	return parseVarints(b, "RESET_STREAM frame", &f.StreamID, &f.ErrorCode, &f.FinalSize)
}

// StopSendingFrame asks the peer to stop sending on a stream whose reader has
// gone (docs/PROTOCOL.md §7.7).
type StopSendingFrame struct{ StreamID, ErrorCode uint64 }

// Append appends the frame.
func (f *StopSendingFrame) Append(b []byte) ([]byte, error) {
	return appendVarintFrame(b, FrameStopSending, "STOP_SENDING stream ID or error code", f.StreamID, f.ErrorCode)
}

// Length is the encoded size.
func (f *StopSendingFrame) Length() int { return varintFrameLen(f.StreamID, f.ErrorCode) }

func (f *StopSendingFrame) parse(b []byte) (int, error) {
	return parseVarints(b, "STOP_SENDING frame", &f.StreamID, &f.ErrorCode)
}

// MaxReasonLen bounds a CLOSE frame's reason phrase.
const MaxReasonLen = 512

// CloseFrame ends the session with an error code (0 = no error) and a reason
// phrase (docs/PROTOCOL.md §7.8). Reason aliases the packet.
type CloseFrame struct {
	ErrorCode uint64
	Reason    []byte
}

// Append appends the frame; a reason longer than MaxReasonLen is cut.
func (f *CloseFrame) Append(b []byte) ([]byte, error) {
	if err := checkVarint("CLOSE error code", f.ErrorCode); err != nil {
		return b, err
	}
	r := f.Reason
	if len(r) > MaxReasonLen {
		r = r[:MaxReasonLen]
	}
	b = AppendVarint(append(b, byte(FrameClose)), f.ErrorCode)
	return append(AppendVarint(b, uint64(len(r))), r...), nil
}

// Length is the encoded size.
func (f *CloseFrame) Length() int {
	r := min(len(f.Reason), MaxReasonLen)
	return 1 + VarintLen(f.ErrorCode) + VarintLen(uint64(r)) + r
}

func (f *CloseFrame) parse(b []byte) (int, error) {
	var l uint64
	off, err := parseVarints(b, "CLOSE frame", &f.ErrorCode, &l)
	if err != nil {
		return 0, err
	}
	if l > MaxReasonLen {
		return 0, &FormatError{What: "CLOSE reason length", Value: l, Why: "more than 512"}
	}
	if uint64(len(b)-off) < l {
		return 0, truncated("CLOSE reason", off+int(l), len(b))
	}
	f.Reason = b[off : off+int(l)]
	return off + int(l), nil
}
