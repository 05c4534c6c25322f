package benchkit

import (
	"context"
	"math/bits"
	"sync"
	"time"
)

// SeqCount counts consumed records by the sequence number the producer
// wrote into each (0, 1, 2, …): how many distinct numbers arrived (unique),
// how many arrived again (duplicated), and, given what was produced, how many
// never arrived (lost). The three are counted separately, so that one
// duplicate never hides one lost record. Safe for concurrent use.
type SeqCount struct {
	mu      sync.Mutex
	seen    []uint64 // bit per sequence number
	failed  []uint64 // bit per sequence number whose produce failed
	unique  int64
	dups    int64
	foreign int64
	limit   uint64
}

// NewSeqCount returns a counter for sequence numbers in [0, limit); a
// number outside is counted as foreign (a record this run did not write).
func NewSeqCount(limit int) *SeqCount {
	return &SeqCount{limit: uint64(max(limit, 0))}
}

func setBit(b *[]uint64, n uint64) (was bool) {
	w := int(n / 64)
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w+1-len(*b)+len(*b)/4)...) // grow by a quarter at least
	}
	m := uint64(1) << (n % 64)
	was = (*b)[w]&m != 0
	(*b)[w] |= m
	return was
}

func hasBit(b []uint64, n uint64) bool {
	w := int(n / 64)
	return w < len(b) && b[w]&(1<<(n%64)) != 0
}

// Add counts one consumed record with sequence number seq and reports
// whether it is the first with that number.
func (c *SeqCount) Add(seq uint64) (first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq >= c.limit {
		c.foreign++
		return false
	}
	if setBit(&c.seen, seq) {
		c.dups++
		return false
	}
	c.unique++
	return true
}

// Failed records that the produce of seq failed: such a record is not lost
// when it never arrives (its producer was told), and counts when it does.
func (c *SeqCount) Failed(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq < c.limit {
		setBit(&c.failed, seq)
	}
}

// Unique is the number of distinct sequence numbers consumed.
func (c *SeqCount) Unique() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unique
}

// Duplicated is the number of records consumed again with a number already
// seen.
func (c *SeqCount) Duplicated() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

// Foreign is the number of records consumed with a number outside the
// counter's range.
func (c *SeqCount) Foreign() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.foreign
}

// UniqueIn is the number of distinct sequence numbers consumed in [from, to).
func (c *SeqCount) UniqueIn(from, to uint64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return countBits(c.seen, from, to, nil)
}

// Lost is the number of sequence numbers in [from, to) that were produced
// without a produce error and never consumed.
func (c *SeqCount) Lost(from, to uint64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if to <= from {
		return 0
	}
	// seen or failed, then the complement
	return int64(to-from) - countBits(c.seen, from, to, c.failed)
}

// countBits counts the numbers in [from, to) set in a (or in or, when not nil).
func countBits(a []uint64, from, to uint64, or []uint64) int64 {
	var n int64
	for s := from; s < to; {
		w := int(s / 64)
		var v uint64
		if w < len(a) {
			v = a[w]
		}
		if w < len(or) {
			v |= or[w]
		}
		lo, hi := s%64, uint64(64)
		if end := uint64(w+1) * 64; end > to {
			hi = 64 - (end - to)
		}
		mask := ^uint64(0) << lo
		if hi < 64 {
			mask &= (1 << hi) - 1
		}
		n += int64(bits.OnesCount64(v & mask))
		s = uint64(w+1) * 64
	}
	return n
}

// DrainGrace is how long consumption goes on after the last expected record
// arrived, so that a duplicate arriving late is still counted.
const DrainGrace = 300 * time.Millisecond

// ConsumeUntil calls poll (which handles the records of one fetch and must
// return when its context ends) until done reports true, then keeps polling
// for grace more so that late duplicates are seen; it stops early when ctx
// ends, or when stalled reports true (no progress for too long). It returns
// ctx.Err() when ctx ended before done, nil otherwise.
func ConsumeUntil(ctx context.Context, poll func(context.Context), done, stalled func() bool, grace time.Duration) error {
	for !done() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if stalled != nil && stalled() {
			return nil
		}
		// One poll is bounded, so that done and stalled are checked often.
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		poll(pctx)
		cancel()
	}
	end := time.Now().Add(grace)
	for ctx.Err() == nil {
		left := time.Until(end)
		if left <= 0 {
			break
		}
		pctx, cancel := context.WithTimeout(ctx, left)
		poll(pctx)
		cancel()
	}
	return nil
}
