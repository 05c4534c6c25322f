package reliable

import (
	"crypto/rand"
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
)

// Budgets: everything a peer can make a session hold is charged, so that
// no peer can make an endpoint hold more than Config.MaxMemory, and one
// session cannot take the share of the others (docs/PROTOCOL.md §8.11).

const (
	// spanCost is what one tracked span of received data is charged: its
	// 16 bytes in a range set that may be at most half full.
	spanCost = 32
	// maxSessionGaps bounds the spans of received data over all of a
	// session's streams; out-of-order data that would add one more is not
	// acknowledged (the peer resends it once the holes have filled).
	maxSessionGaps = 4096
)

// budget is the state of the shares an endpoint's sessions draw on; the
// endpoints of one Listener (Config.ReceiveLoops) share one, as they share
// its accept queue.
type budget struct {
	mem        atomic.Int64 // bytes of stream buffers the sessions hold (Config.MaxMemory)
	live       atomic.Int32 // sessions (the fair shares divide by it)
	memMu      sync.Mutex
	memWaiters []memWaiter  // writers held at the memory ceiling
	memWakeAt  atomic.Int64 // the highest level a waiter wakes at (MinInt64: none)
	// acceptSessions counts sessions with streams in the listener's queue.
	acceptSessions atomic.Int32
}

func newBudget() *budget {
	b := &budget{}
	b.memWakeAt.Store(math.MinInt64)
	return b
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("raptor: crypto/rand failed: " + err.Error())
	}
	return binary.LittleEndian.Uint64(b[:])
}

// recvBudget is what a session's receive side may hold in buffers and
// spans for data that cannot be read yet: twice the session window, since
// buffers come in power-of-two sizes (ringSize).
func (s *Session) recvBudget() int { return 2 * s.cfg.SessionReceiveWindow }

// memAllowsLocked reports whether the session may take n more bytes of
// stream buffers: the endpoint stays under Config.MaxMemory and, once above
// half of it, a session grows only within its fair share.
func (s *Session) memAllowsLocked(n int) bool {
	e := s.ep
	limit := e.cfg.MaxMemory
	used := e.mem.Load() + int64(n)
	if used > limit {
		return false
	}
	if used > limit/2 {
		share := limit / (2 * int64(max(1, e.live.Load())))
		return int64(s.mem+n) <= share
	}
	return true
}

// chargeLocked adds delta bytes (negative: released) of stream buffers to
// the session and its endpoint, and wakes writers held at the ceiling when
// memory was released.
func (s *Session) chargeLocked(delta int) {
	if delta == 0 {
		return
	}
	s.mem += delta
	if s.memReleased {
		return
	}
	used := s.ep.mem.Add(int64(delta))
	if delta < 0 && used <= s.ep.memWakeAt.Load() {
		s.ep.wakeMemWaiters(used)
	}
}

// releaseMemLocked gives the whole charge back when the session ends (its
// buffers then belong to nobody and go to the garbage collector).
func (s *Session) releaseMemLocked() {
	if s.memReleased {
		return
	}
	s.memReleased = true
	s.ep.mem.Add(-int64(s.mem))
	s.ep.wakeMemWaiters(math.MinInt64) // the fair shares grew: everyone looks again
}

// growRingLocked is bufPool.growRing with the change of capacity charged.
func (s *Session) growRingLocked(buf []byte, base, lo, hi uint64, n int, recv bool) ([]byte, uint64) {
	old := len(buf)
	nb, nbase := s.ep.bufs.growRing(buf, base, lo, hi, n)
	if d := len(nb) - old; d != 0 {
		s.chargeLocked(d)
		if recv {
			s.recvMem += d
		}
	}
	return nb, nbase
}

// putBufLocked returns a stream buffer to the pool and its charge.
func (s *Session) putBufLocked(b []byte, recv bool) {
	s.chargeLocked(-cap(b))
	if recv {
		s.recvMem -= cap(b)
	}
	s.ep.bufs.put(b)
}

// memWaiter is a writer held at the memory ceiling until the endpoint's
// use falls to wakeAt (its own session's acknowledgements wake it too).
type memWaiter struct {
	st     *Stream
	wakeAt int64
}

// addMemWaiterLocked holds st's writer, which needs cost more bytes, until
// memory is released: until the endpoint is below the ceiling by cost, or
// below half of it when the session is beyond its fair share.
func (s *Session) addMemWaiterLocked(st *Stream, cost int) {
	e := s.ep
	at := e.cfg.MaxMemory - int64(cost)
	if int64(s.mem+cost) > e.cfg.MaxMemory/(2*int64(max(1, e.live.Load()))) {
		at = e.cfg.MaxMemory/2 - int64(cost)
	}
	e.memMu.Lock()
	e.memWaiters = append(e.memWaiters, memWaiter{st, at})
	if at > e.memWakeAt.Load() {
		e.memWakeAt.Store(at)
	}
	e.memMu.Unlock()
}

// wakeMemWaiters lets the held writers whose level has been reached (all of
// them for math.MinInt64) try again.
func (e *endpoint) wakeMemWaiters(used int64) {
	e.memMu.Lock()
	keep := e.memWaiters[:0]
	wakeAt := int64(math.MinInt64)
	for _, w := range e.memWaiters {
		if used == math.MinInt64 || used <= w.wakeAt {
			signal(w.st.writeCh)
			continue
		}
		keep = append(keep, w)
		wakeAt = max(wakeAt, w.wakeAt)
	}
	clear(e.memWaiters[len(keep):])
	e.memWaiters = keep
	e.memWakeAt.Store(wakeAt)
	e.memMu.Unlock()
}

// acceptShare is how many streams one session may have waiting in the
// listener's shared accept queue: an equal part of the backlog among the
// sessions that have some waiting, plus a newcomer, so that there is always
// room for a session that has none.
func (e *endpoint) acceptShare() int32 {
	n := e.acceptSessions.Load() + 1
	return max(1, int32(e.cfg.AcceptBacklog)/n)
}

// onAcceptedFromQueue is called when the listener's Accept took st from
// the shared queue.
func (st *Stream) onAcceptedFromQueue() {
	if st.s.acceptWaiting.Add(-1) == 0 {
		st.s.ep.acceptSessions.Add(-1)
	}
}
