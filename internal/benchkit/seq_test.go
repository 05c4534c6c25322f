package benchkit

import (
	"context"
	"testing"
	"time"
)

func TestSeqCount(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		add                        []uint64
		failed                     []uint64
		produced                   uint64
		unique, dup, lost, foreign int64
	}{
		{"every record once", []uint64{0, 1, 2, 3}, nil, 4, 4, 0, 0, 0},
		{"a duplicate", []uint64{0, 1, 1, 2, 3}, nil, 4, 4, 1, 0, 0},
		{"a lost record", []uint64{0, 1, 3}, nil, 4, 3, 0, 1, 0},
		{"one duplicate hides no loss", []uint64{0, 1, 1, 3}, nil, 4, 3, 1, 1, 0},
		{"a failed produce is not lost", []uint64{0, 1, 3}, []uint64{2}, 4, 3, 0, 0, 0},
		{"a failed produce that arrived", []uint64{0, 1, 2, 3}, []uint64{2}, 4, 4, 0, 0, 0},
		{"foreign record", []uint64{0, 1, 1 << 40}, nil, 2, 2, 0, 0, 1},
		{"across words", []uint64{0, 63, 64, 127, 128, 129, 64}, nil, 130, 6, 1, 124, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewSeqCount(1000)
			for _, f := range tc.failed {
				c.Failed(f)
			}
			for _, s := range tc.add {
				c.Add(s)
			}
			if c.Unique() != tc.unique || c.Duplicated() != tc.dup || c.Lost(0, tc.produced) != tc.lost || c.Foreign() != tc.foreign {
				t.Fatalf("unique %d duplicated %d lost %d foreign %d; want %d %d %d %d",
					c.Unique(), c.Duplicated(), c.Lost(0, tc.produced), c.Foreign(), tc.unique, tc.dup, tc.lost, tc.foreign)
			}
		})
	}
	c := NewSeqCount(1000)
	for _, s := range []uint64{5, 6, 70, 71, 72} {
		c.Add(s)
	}
	if got := c.UniqueIn(6, 72); got != 3 {
		t.Fatalf("UniqueIn(6, 72) = %d, want 3", got)
	}
	if got := c.Lost(6, 72); got != 66-3 {
		t.Fatalf("Lost(6, 72) = %d, want 63", got)
	}
}

// ConsumeUntil keeps polling for the grace period after done, so that a
// duplicate delivered after the last new record is counted; and it stops
// when stalled.
func TestConsumeUntilDrainsLateDuplicates(t *testing.T) {
	c := NewSeqCount(10)
	// Each poll delivers one batch: the last new record, then nothing, then
	// a duplicate of an early one.
	batches := [][]uint64{{0, 1}, {2}, nil, {1}}
	polls := 0
	poll := func(ctx context.Context) {
		if polls < len(batches) {
			for _, s := range batches[polls] {
				c.Add(s)
			}
		} else {
			<-ctx.Done() // a real poll waits for records until its context ends
		}
		polls++
	}
	done := func() bool { return c.Unique() >= 3 }
	if err := ConsumeUntil(context.Background(), poll, done, nil, time.Minute/60); err != nil {
		t.Fatal(err)
	}
	if c.Unique() != 3 || c.Duplicated() != 1 {
		t.Fatalf("unique %d duplicated %d after the drain, want 3 and 1 (polls %d)", c.Unique(), c.Duplicated(), polls)
	}
	// Stalled: the missing record never comes, the loop ends anyway.
	c2 := NewSeqCount(10)
	n := 0
	err := ConsumeUntil(context.Background(), func(context.Context) { n++; c2.Add(0) },
		func() bool { return c2.Unique() >= 2 }, func() bool { return n >= 5 }, time.Second)
	if err != nil || n != 5 || c2.Lost(0, 2) != 1 || c2.Duplicated() != 4 {
		t.Fatalf("stalled loop: err %v, %d polls, lost %d, duplicated %d", err, n, c2.Lost(0, 2), c2.Duplicated())
	}
	// An ended context ends it with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ConsumeUntil(ctx, func(context.Context) {}, func() bool { return false }, nil, time.Second); err == nil {
		t.Fatal("ConsumeUntil with an ended context returned nil")
	}
}
