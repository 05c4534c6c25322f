//go:build raptorbugs

// Tests that expose bugs found by FuzzEndpointReceive; not committed. Run with
// go test -tags raptorbugs -run Bug ./reliable/
package reliable

import (
	"errors"
	"testing"

	"github.com/raptormq/raptor/wire"
)

// sessionErrCode returns the code the established session ended with, or -1.
func (h *fzHarness) sessionErrCode() int64 {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	var se *SessionError
	if errors.As(h.s.err, &se) {
		return int64(se.Code)
	}
	return -1
}

// PROTOCOL §8.8: a RESET_STREAM's final size counts toward the limits like
// data; beyond MAX_STREAM_DATA it is a flow-control violation (error 2).
// session_recv.go (case *wire.ResetStreamFrame) checks only the session window.
func TestBugResetBeyondStreamWindow(t *testing.T) {
	h := newFzHarness(t)
	defer h.close()
	d := &wire.StreamFrame{StreamID: 0, Data: []byte("00000"), HasLen: true}
	h.deliver(fzSub(h, fzShort(t, 0, d)), fzClient)
	h.deliver(fzSub(h, fzShort(t, 1, &wire.ResetStreamFrame{StreamID: 0, ErrorCode: 48, FinalSize: 6192})), fzClient)
	if c := h.sessionErrCode(); c != int64(CodeFlowControl) {
		t.Fatalf("RESET_STREAM final size 6192 beyond stream window %d: session error code %d, want %d (flow control)",
			h.cfg.StreamReceiveWindow, c, CodeFlowControl)
	}
}

// PROTOCOL §8.1: a RESET_STREAM with a final size other than the FIN's, or
// below the data already received, closes the session with error 4.
func TestBugResetChangesFinalSize(t *testing.T) {
	for _, tc := range []struct {
		name  string
		final uint64
		fin   bool
	}{{"below received data", 2, false}, {"differs from FIN", 100, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFzHarness(t)
			defer h.close()
			d := &wire.StreamFrame{StreamID: 0, Data: []byte("hello"), HasLen: true, Fin: tc.fin}
			h.deliver(fzSub(h, fzShort(t, 0, d)), fzClient)
			h.deliver(fzSub(h, fzShort(t, 1, &wire.ResetStreamFrame{StreamID: 0, ErrorCode: 1, FinalSize: tc.final})), fzClient)
			if c := h.sessionErrCode(); c != int64(CodeProtocol) {
				t.Fatalf("RESET_STREAM final size %d after 5 bytes (fin %v): session error code %d, want %d", tc.final, tc.fin, c, CodeProtocol)
			}
		})
	}
}

// fzSub puts the established session's ID into a packet built with fzSessionID.
func fzSub(h *fzHarness, b []byte) []byte {
	copy(b[1:], h.s.localID[:])
	return b
}

// stats.go counters.add, which folds a finished session's counters into its
// endpoint, leaves out dropsAcceptQueue: Listener.Stats().DropsAcceptQueue
// goes back to 0 when the session ends.
func TestBugAcceptQueueDropsLostWhenSessionEnds(t *testing.T) {
	h := newFzHarness(t)
	defer h.close()
	// Stream 14 opens the peer's streams 0..14 (8 streams), beyond the
	// accept backlog of 4; nobody accepts.
	d := &wire.StreamFrame{StreamID: 14, Data: []byte("x"), HasLen: true}
	h.deliver(fzSub(h, fzShort(t, 0, d)), fzClient)
	before := h.l.Stats().DropsAcceptQueue
	if before == 0 {
		t.Fatalf("no stream refused with a full accept backlog")
	}
	h.s.mu.Lock()
	h.s.closeLocked(&SessionError{Code: CodeApplication}, false)
	h.s.mu.Unlock()
	h.s.wakeSender()
	<-h.s.done
	if after := h.l.Stats().DropsAcceptQueue; after != before {
		t.Fatalf("Listener.Stats().DropsAcceptQueue = %d while the session lived, %d after it ended", before, after)
	}
}
