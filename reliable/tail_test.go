package reliable

import (
	"context"
	"io"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// TestSimTailLatencyUnderLoss measures request/response round trips of 1 KiB
// in virtual time over a link with 1 ms one-way delay and random loss: a lost
// request or reply must be recovered in a few RTTs (tail-loss probe, NAK), not
// after a 200 ms timer as TCP does. Virtual time makes this deterministic.
func TestSimTailLatencyUnderLoss(t *testing.T) {
	for _, tc := range []struct {
		loss      float64
		p99, p999 time.Duration
	}{
		{0.01, 10 * time.Millisecond, 20 * time.Millisecond},
		{0.05, 20 * time.Millisecond, 40 * time.Millisecond},
	} {
		synctest.Test(t, func(t *testing.T) {
			nw, l, s := simPair(t, 21, simnet.LinkConfig{Loss: tc.loss, Delay: time.Millisecond, Jitter: 100 * time.Microsecond}, nil)
			defer nw.Close()
			go func() {
				c, err := l.AcceptStream(context.Background())
				if err != nil {
					return
				}
				buf := make([]byte, 1024)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			st, _ := s.OpenStream(context.Background())
			buf := make([]byte, 1024)
			const n = 3000
			rtts := make([]time.Duration, 0, n)
			for i := 0; i < n+100; i++ {
				start := time.Now()
				if _, err := st.Write(buf); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(st, buf); err != nil {
					t.Fatal(err)
				}
				if i >= 100 { // warm-up: RTT estimate settles
					rtts = append(rtts, time.Since(start))
				}
			}
			slices.Sort(rtts)
			p50, p99, p999 := rtts[n/2], rtts[n*99/100], rtts[n*999/1000]
			st2 := s.Stats()
			t.Logf("loss %.0f%%: p50 %v p99 %v p99.9 %v max %v; retransmits %d, RTOs %d, NAKs %d",
				tc.loss*100, p50, p99, p999, rtts[n-1], st2.Counters[CounterRetransmits], st2.Counters[CounterRTOs], st2.Counters[CounterNaksReceived])
			if p99 > tc.p99 || p999 > tc.p999 {
				t.Errorf("loss %.0f%%: p99 %v / p99.9 %v, want at most %v / %v", tc.loss*100, p99, p999, tc.p99, tc.p999)
			}
			s.CloseWithError(0, "")
			l.Close()
		})
	}
}
