package reliable

import (
	"io"
	"slices"
	"testing"
	"time"

	"github.com/raptormq/raptor/wire"
)

// TestFillAckLeavesOutAcknowledgedRanges: ranges the peer has seen
// acknowledged (onAckAcked) stay out of ACK frames, the newest range always
// goes in, and a late packet below the floor is reported again.
func TestFillAckLeavesOutAcknowledgedRanges(t *testing.T) {
	t0 := time.Unix(100, 0)
	// Received 0-9, 11-19, 21-29 (10 and 20 skipped by the sender).
	base := func() *receivedTracker {
		rt := &receivedTracker{maxAckDelay: 25 * time.Millisecond}
		for pn := uint64(0); pn < 30; pn++ {
			if pn != 10 && pn != 20 {
				rt.onPacket(pn, true, 100, t0)
			}
		}
		return rt
	}
	all := []wire.AckRange{{Smallest: 21, Largest: 29}, {Smallest: 11, Largest: 19}, {Smallest: 0, Largest: 9}}
	for _, tc := range []struct {
		name  string
		acked []uint64 // onAckAcked calls, in order
		late  []uint64 // packets that arrive afterwards
		want  []wire.AckRange
	}{
		{"no ACK acknowledged", nil, nil, all},
		{"floor inside the oldest range", []uint64{5}, nil, all},
		{"floor at the end of the oldest range", []uint64{9}, nil, all[:2]},
		{"floor inside the middle range", []uint64{15}, nil, all[:2]},
		{"floor inside the newest range", []uint64{25}, nil, all[:1]},
		{"floor above everything", []uint64{40}, nil, all[:1]},
		{"an older ACK does not lower it", []uint64{25, 15}, nil, all[:1]},
		{"a late packet lowers it", []uint64{25}, []uint64{20}, []wire.AckRange{{Smallest: 11, Largest: 29}}},
		{"a late packet below everything", []uint64{25}, []uint64{10}, []wire.AckRange{{Smallest: 21, Largest: 29}, {Smallest: 0, Largest: 19}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := base()
			for _, l := range tc.acked {
				rt.onAckAcked(l)
			}
			for _, pn := range tc.late {
				rt.onPacket(pn, true, 100, t0)
			}
			var f wire.AckFrame
			rt.fillAck(&f, t0)
			if !slices.Equal(f.Ranges, tc.want) {
				t.Errorf("ACK ranges %v, want %v (floor %d)", f.Ranges, tc.want, rt.ackFloor)
			}
		})
	}
}

// TestPingPongAcksCarryFewRanges: in a request/response exchange every ACK
// rides on a packet the peer acknowledges, so the ranges the peer's skipped
// packet numbers leave behind are not repeated in every ACK frame.
func TestPingPongAcksCarryFewRanges(t *testing.T) {
	c, srv := loopStreams(t, nil)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				done <- err
				return
			}
			if _, err := srv.Write(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	msg, buf := make([]byte, 64), make([]byte, 64)
	// The listener skips a packet number within its first 129, the next
	// within 256 more, the next within 512 more: at least 3 gaps by 1,000.
	const n = 1000
	for i := range n {
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	s := c.Session()
	s.mu.Lock()
	recvRanges, ackRanges := len(s.rcv.recvd.s), len(s.ackFrame.Ranges)
	s.mu.Unlock()
	if recvRanges < 4 {
		t.Fatalf("the client holds %d received ranges after %d round trips, want at least 4 (skipped packet numbers)", recvRanges, n)
	}
	if ackRanges > 2 {
		t.Errorf("the client's last ACK frame carried %d ranges of %d received, want at most 2", ackRanges, recvRanges)
	}
	c.Close()
}
