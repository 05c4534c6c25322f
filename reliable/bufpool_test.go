package reliable

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// TestRingReadWrite writes and reads back spans of a ring at offsets that
// do and do not wrap, and checks where ringSpan stops.
func TestRingReadWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int
		off      uint64
		n        int
		wantSpan int // len(ringSpan(off, n))
	}{
		{"start", 16, 0, 16, 16},
		{"inside", 16, 3, 5, 5},
		{"to the end", 16, 10, 6, 6},
		{"wraps", 16, 10, 9, 6},
		{"wraps all", 16, 15, 16, 1},
		{"later lap", 16, 5*16 + 12, 10, 4},
		{"huge offset", 4096, 1<<40 + 4000, 200, 96},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, tc.size)
			p := make([]byte, tc.n)
			for i := range p {
				p[i] = byte(i + 1)
			}
			ringWrite(buf, tc.off, p)
			got := make([]byte, tc.n)
			ringRead(buf, tc.off, got)
			if !bytes.Equal(got, p) {
				t.Fatalf("read back %v, wrote %v", got, p)
			}
			sp := ringSpan(buf, tc.off, uint64(tc.n))
			if len(sp) != tc.wantSpan {
				t.Fatalf("ringSpan(%d, %d) has %d bytes, want %d", tc.off, tc.n, len(sp), tc.wantSpan)
			}
			if !bytes.Equal(sp, p[:len(sp)]) {
				t.Fatalf("ringSpan holds %v, want %v", sp, p[:len(sp)])
			}
			if rest := ringSpan(buf, tc.off+uint64(len(sp)), uint64(tc.n-len(sp))); len(sp) < tc.n && !bytes.Equal(rest, p[len(sp):]) {
				t.Fatalf("the rest after the wrap holds %v, want %v", rest, p[len(sp):])
			}
		})
	}
}

// TestGrowRing grows rings holding live bytes at wrapping offsets: the bytes
// survive, the new ring is a class size whose base is the first live offset
// (a ring with room keeps its base), and the cost is what growCost said.
func TestGrowRing(t *testing.T) {
	p := newBufPool(1 << 20)
	for _, tc := range []struct {
		name     string
		oldSize  int
		base     uint64 // of the old ring
		lo, hi   uint64
		need     int
		wantSize int
	}{
		{"from nothing", 0, 0, 100, 100, 1000, minBufClass},
		{"room enough", minBufClass, 1000, 4000, 5000, 4096, minBufClass},
		{"wrapped live bytes", minBufClass, 0, 3*4096 + 3000, 4*4096 + 1000, 5000, 8192},
		{"wrapped, with a base", minBufClass, 5, 3*4096 + 3000, 4*4096 + 1000, 5000, 8192},
		{"to a big class", minBufClass, 3, 7, 4000, 300000, 512 << 10},
		{"at the largest class", 512 << 10, 1<<33 - 12345, 1 << 33, 1<<33 + 400000, 1 << 20, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var old []byte
			if tc.oldSize > 0 {
				old = p.get(tc.oldSize)
				old = old[:cap(old)]
			}
			live := make([]byte, tc.hi-tc.lo)
			for i := range live {
				live[i] = byte(i*7 + 3)
			}
			if old != nil {
				ringWrite(old, tc.lo-tc.base, live)
			}
			cost := growCost(old, tc.need)
			nb, base := p.growRing(old, tc.base, tc.lo, tc.hi, tc.need)
			if len(nb) != tc.wantSize || cap(nb) != len(nb) {
				t.Fatalf("grown ring len %d cap %d, want %d", len(nb), cap(nb), tc.wantSize)
			}
			if cost != len(nb)-len(old) {
				t.Fatalf("growCost %d, grew by %d", cost, len(nb)-len(old))
			}
			wantBase := tc.base
			if cost > 0 {
				wantBase = tc.lo
			}
			if base != wantBase {
				t.Fatalf("base %d after growth by %d, want %d", base, cost, wantBase)
			}
			if old != nil {
				got := make([]byte, len(live))
				ringRead(nb, tc.lo-base, got)
				if !bytes.Equal(got, live) {
					t.Fatalf("live bytes [%d, %d) changed by growth", tc.lo, tc.hi)
				}
			}
		})
	}
}

// TestSimRingWrapLossy sends writes of sizes that do not divide the ring
// through loss and reordering with a small send buffer and receive window:
// the rings wrap every few writes, data frames are cut at the wrap,
// retransmissions read lost bytes back across it, out-of-order data lands
// on both sides of the receive ring's end, and protected packets are sealed
// straight from the send ring (sealTailLocked) or, at the ring's start,
// copied first. The bytes arrive intact.
func TestSimRingWrapLossy(t *testing.T) {
	link := simnet.LinkConfig{Loss: 0.10, Reorder: 0.25, ReorderDelay: 3 * time.Millisecond, Delay: 2 * time.Millisecond, Jitter: time.Millisecond}
	for _, tc := range []struct {
		name          string
		sendBuf, rwin int
		sizes         []int
	}{
		{"ring 8 KiB", 5000, 6000, []int{1000, 333, 4095, 1, 2047}},
		{"ring 4 KiB, windows 1 KiB", 1 << 10, 1 << 10, []int{700, 1500, 13}},
		{"big datagrams", 12000, 20000, []int{9000, 5000, 17}},
	} {
		for seed := int64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", tc.name, seed), func(t *testing.T) {
				t.Parallel()
				t.Logf("seed %d", seed)
				synctest.Test(t, func(t *testing.T) {
					cfg := &Config{StreamSendBuffer: tc.sendBuf, StreamReceiveWindow: tc.rwin, InsecurePlaintext: seed == 2}
					nw, l, s := simPair(t, seed, link, cfg)
					defer nw.Close()
					var want []byte
					for i := 0; len(want) < 200<<10; i++ {
						n := tc.sizes[i%len(tc.sizes)]
						for j := 0; j < n; j++ {
							want = append(want, byte(len(want)*131+j))
						}
					}
					streamRoundTrip(t, l, s, want, tc.sizes)
					if r := s.Stats().Counters[CounterRetransmits]; r == 0 {
						t.Fatalf("no retransmissions through %v%% loss: the test did not read lost bytes back from the ring", link.Loss*100)
					}
					s.mu.Lock()
					fromRing := s.sealedFromRing
					s.mu.Unlock()
					if protected := !cfg.InsecurePlaintext; protected != (fromRing > 0) {
						t.Fatalf("protected %v: %d packets sealed straight from the send ring", protected, fromRing)
					}
				})
			})
		}
	}
}

// streamRoundTrip writes want on a new stream of s in writes of the given
// sizes, in turn, then FIN, and checks that the listener's side reads
// exactly want.
func streamRoundTrip(t *testing.T, l *Listener, s *Session, want []byte, sizes []int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	werr := make(chan error, 1)
	go func() {
		rest := want
		for i := 0; len(rest) > 0; i++ {
			n := min(sizes[i%len(sizes)], len(rest))
			if _, err := st.Write(rest[:n]); err != nil {
				werr <- fmt.Errorf("write %d: %w", i, err)
				return
			}
			rest = rest[n:]
		}
		werr <- st.CloseWrite()
	}()
	rs, err := l.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("accept stream: %v", err)
	}
	got, err := io.ReadAll(rs)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", len(got), err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	sameBytes(t, got, want)
}

// sameBytes fails t unless the bytes read, got, are the bytes written, want,
// naming the first offset where they differ.
func sameBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Fatalf("read %d bytes, wrote %d: first difference at offset %d", len(got), len(want), i)
	}
}

// TestBufPoolBounds: the pool keeps at most poolDepth free buffers of a
// class and poolMaxFree bytes over all classes; a buffer it keeps comes back
// from get, and one it let go is counted.
func TestBufPoolBounds(t *testing.T) {
	p := newBufPool(DefaultStreamReceiveWindow)
	for range poolDepth + 2 { // one class: poolDepth kept
		p.put(make([]byte, 0, minBufClass))
	}
	if got := len(p.free[0]); got != poolDepth || p.dropped != 2 {
		t.Fatalf("after %d puts of one class: %d free, %d dropped; want %d, 2", poolDepth+2, got, p.dropped, poolDepth)
	}
	// Every class, largest first, poolDepth times: the byte bound stops it.
	for i := len(p.classes) - 1; i >= 0; i-- {
		for range poolDepth {
			p.put(make([]byte, 0, p.classes[i]))
		}
	}
	held := 0
	for i, f := range p.free {
		held += len(f) * p.classes[i]
		for _, b := range f {
			if cap(b) != p.classes[i] {
				t.Fatalf("class %d holds a buffer of capacity %d", p.classes[i], cap(b))
			}
		}
	}
	if held != p.freeLen || held > poolMaxFree {
		t.Fatalf("pool holds %d free bytes (counted %d), bound %d", held, p.freeLen, poolMaxFree)
	}
	big := p.classes[len(p.classes)-1]
	if len(p.free[len(p.classes)-1]) == 0 {
		t.Fatalf("no free buffer of the largest class (%d B) kept", big)
	}
	b := p.get(big)
	if cap(b) != big || p.freeLen != held-big {
		t.Fatalf("get(%d): capacity %d, free bytes %d, want %d and %d", big, cap(b), p.freeLen, big, held-big)
	}
	p.put(b)
	if p.freeLen != held {
		t.Fatalf("put back: free bytes %d, want %d", p.freeLen, held)
	}
}
