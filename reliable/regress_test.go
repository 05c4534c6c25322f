// Regression tests for findings of FuzzEndpointReceive and review.
package reliable

import (
	"testing"
	"time"

	"github.com/raptormq/raptor/wire"
)

// endpoint.go snapshot reads e.stats before taking e.mu; sessionDone folds a
// finished session into e.stats and deletes it under e.mu in between, so
// that session's counters are in neither sum: Listener.Stats() goes
// backwards for a moment every time a session ends.
func TestRegressionStatsSnapshotGoesBackwards(t *testing.T) {
	misses := 0
	for i := 0; i < 300; i++ {
		h := newFzHarness(t)
		h.deliver(fzSub(h, fzShort(t, 0, &wire.PingFrame{})), fzClient)
		want := h.l.Stats().Counters[CounterPacketsReceived]
		go func() {
			h.s.mu.Lock()
			h.s.closeLocked(&SessionError{Code: CodeApplication}, false, time.Now())
			h.s.mu.Unlock()
			h.s.wakeSender()
		}()
		for done := false; !done; {
			select {
			case <-h.s.done:
				done = true
			default:
			}
			if got := h.l.Stats().Counters[CounterPacketsReceived]; got < want {
				misses++
				break
			}
		}
		h.close()
	}
	if misses > 0 {
		t.Fatalf("Listener.Stats().Counters[CounterPacketsReceived] went backwards in %d of 300 session ends", misses)
	}
}

// session_recv.go handleShortLocked returns at once for a session in
// stateClosed (set by run before sessionDone removes it): the datagram is
// dropped without any counter. The state is forced here; in a real run the
// window is between run() setting stateClosed and sessionDone.
func TestRegressionClosedSessionDropUncounted(t *testing.T) {
	h := newFzHarness(t)
	defer h.close()
	h.s.mu.Lock()
	h.s.state = stateClosed
	h.s.mu.Unlock()
	before := h.accounted()
	h.deliver(fzSub(h, fzShort(t, 0, &wire.PingFrame{})), fzClient)
	if h.accounted() == before {
		t.Fatalf("a datagram for a closed session raised no counter")
	}
}
