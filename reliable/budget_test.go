package reliable

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// budgetSessions is an endpoint with MaxMemory limit and n sessions, as
// the listener has them (each counted live), without sockets.
func budgetSessions(t *testing.T, limit int64, maxSessions, n int) (*endpoint, []*Session) {
	t.Helper()
	cfg, err := (&Config{MaxMemory: limit, MaxSessions: maxSessions}).populate()
	if err != nil {
		t.Fatal(err)
	}
	e := newEndpoint(nil, cfg, 1)
	var ss []*Session
	for range n {
		ss = append(ss, newSession(e, false, randomID(), simClient))
		e.live.Add(1)
	}
	return e, ss
}

// Sessions on their own goroutines, each under its own lock, reserve the
// last piece of room at once: exactly one gets it. Before the check and
// the charge were one step, each could pass the check before any charged,
// and together they went beyond the ceiling (#9's never-ACK peers then left
// a legitimate session no room at all).
func TestMemoryCeilingConcurrent(t *testing.T) {
	const limit, maxSessions, sessions = 16 << 20, 64, 16
	const held, piece = 256 << 10, 64 << 10 // beyond the floor, within the fair share
	e, ss := budgetSessions(t, limit, maxSessions, sessions)
	if f, sh := ss[0].memFloor(), ss[0].fairShare(); held <= f || held+piece > sh {
		t.Fatalf("floor %d, fair share %d: the test's sizes miss the regime", f, sh)
	}
	for _, s := range ss {
		s.mu.Lock()
		if !s.reserveMemLocked(held) {
			t.Fatalf("session could not take %d bytes at %d", held, e.mem.Load())
		}
		s.mu.Unlock()
	}
	// Room for one piece under half the ceiling, held by nobody in
	// particular.
	other := int64(limit/2-piece) - e.mem.Load()
	e.mem.Add(other)
	for round := range 200 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []*Session
		for _, s := range ss {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.reserveMemLocked(piece) {
					mu.Lock()
					won = append(won, s)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(won) != 1 || e.mem.Load() != limit/2 {
			t.Fatalf("round %d: %d of %d sessions took the last %d bytes; the endpoint holds %d, half its ceiling is %d",
				round, len(won), sessions, piece, e.mem.Load(), limit/2)
		}
		won[0].mu.Lock()
		won[0].chargeLocked(-piece)
		won[0].mu.Unlock()
	}
	var sum int64
	for _, s := range ss {
		sum += int64(s.mem)
	}
	if used := e.mem.Load() - other; used != sum {
		t.Errorf("endpoint charged %d bytes, its sessions hold %d", used, sum)
	}
	var st Stats
	for _, s := range ss {
		s.stats.addTo(&st)
	}
	if st.BufferBytes != uint64(sum) {
		t.Errorf("Stats.BufferBytes %d, the sessions hold %d", st.BufferBytes, sum)
	}
}

// Sessions that come one after another, each taking all it may before the
// next comes, leave every newcomer its floor, up to MaxSessions sessions.
// Under the fair share alone, the first took half the ceiling, the second
// a quarter, the third a sixth and the fourth the rest: the shares of the
// first ones were larger.
func TestMemoryCeilingLeavesNewcomersRoom(t *testing.T) {
	const limit, maxSessions, greedy = 8 << 20, 64, 12
	const chunk = 4 << 10
	e, _ := budgetSessions(t, limit, maxSessions, 0)
	newcomer := func() *Session {
		s := newSession(e, false, randomID(), simClient)
		e.live.Add(1)
		return s
	}
	for i := range greedy {
		s := newcomer()
		s.mu.Lock()
		for s.reserveMemLocked(chunk) {
		}
		s.mu.Unlock()
		t.Logf("greedy session %d holds %d KiB, the endpoint %d KiB", i, s.mem>>10, e.mem.Load()>>10)
	}
	for i := greedy; i < maxSessions; i++ {
		s := newcomer()
		s.mu.Lock()
		floor := int(s.memFloor())
		ok := s.reserveMemLocked(floor)
		s.mu.Unlock()
		if !ok {
			t.Fatalf("newcomer %d of %d could not take its floor of %d bytes; the endpoint holds %d of %d", i, maxSessions, floor, e.mem.Load(), limit)
		}
	}
	if used := e.mem.Load(); used > limit {
		t.Fatalf("the endpoint holds %d bytes, beyond its ceiling of %d", used, limit)
	}
}

// A held writer is woken at a level where its reservation then succeeds:
// addMemWaiterLocked's level and memAllowsLocked agree, in every regime.
func TestMemoryWaiterLevel(t *testing.T) {
	const limit = 8 << 20
	r := rand.New(rand.NewPCG(7, 7))
	for range 5000 {
		e, ss := budgetSessions(t, limit, 1+r.IntN(100), 1+r.IntN(40))
		s := ss[0]
		s.mem = r.IntN(limit / 2)
		cost := 4<<10 + r.IntN(1<<20)
		st := &Stream{s: s, writeCh: make(chan struct{}, 1)}
		s.addMemWaiterLocked(st, cost)
		at := e.memWaiters[0].wakeAt
		if at < 0 {
			continue // never: the session alone is beyond what it may hold
		}
		if !s.memAllowsLocked(at, cost) {
			t.Fatalf("session of %d bytes (of %d sessions) woken at %d for %d more bytes, which it may not take there",
				s.mem, e.live.Load(), at, cost)
		}
		if s.memAllowsLocked(at+1, cost) && at+int64(cost) < limit {
			t.Fatalf("session of %d bytes (of %d sessions) woken at %d for %d more bytes, but could take them at %d",
				s.mem, e.live.Load(), at, cost, at+1)
		}
	}
}
