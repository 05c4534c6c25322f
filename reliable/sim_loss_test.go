package reliable

import (
	"context"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// simBulk moves size bytes one way (client to server) on one stream over
// link and returns the virtual time it took and the sender's stats.
func simBulk(t *testing.T, seed int64, link simnet.LinkConfig, cfg *Config, size int) (time.Duration, Stats) {
	t.Helper()
	var took time.Duration
	var st Stats
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, seed, link, cfg)
		defer nw.Close()
		done := make(chan error, 1)
		go func() {
			acc, err := l.AcceptStream(context.Background())
			if err != nil {
				done <- err
				return
			}
			n, err := io.Copy(io.Discard, acc)
			if err == nil && n != int64(size) {
				err = fmt.Errorf("server read %d bytes, want %d", n, size)
			}
			done <- err
		}()
		start := time.Now()
		str, err := s.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := str.Write(buf[:min(len(buf), size-sent)]); err != nil {
				t.Fatalf("write at %d: %v", sent, err)
			}
		}
		str.CloseWrite()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		took = time.Since(start)
		st = s.Stats()
		s.CloseWithError(0, "done")
		l.Close()
	})
	return took, st
}

// TestSimLossGoodput measures bulk goodput under 1% random loss relative to
// the same path without loss (virtual time, so deterministic per seed).
func TestSimLossGoodput(t *testing.T) {
	const size = 16 << 20
	base := simnet.LinkConfig{Delay: time.Millisecond, Bandwidth: 100e6, QueueLen: 256}
	lossy := base
	lossy.Loss = 0.01
	for _, cc := range []string{"newreno", "cubic"} {
		cfg := &Config{Congestion: cc}
		clean, _ := simBulk(t, 1, base, cfg, size)
		var worst float64 = 1
		for seed := int64(1); seed <= 3; seed++ {
			d, st := simBulk(t, seed, lossy, cfg, size)
			ratio := float64(clean) / float64(d)
			worst = min(worst, ratio)
			t.Logf("%s seed %d: clean %v (%.1f MB/s), 1%% loss %v (%.1f MB/s) = %.2f of clean; retransmits %d rtos %d naks %d cwnd %d",
				cc, seed, clean, float64(size)/clean.Seconds()/1e6, d, float64(size)/d.Seconds()/1e6, ratio,
				st.Counters[CounterRetransmits], st.Counters[CounterRTOs], st.Counters[CounterNaksReceived], st.CongestionWindow)
		}
	}
}
