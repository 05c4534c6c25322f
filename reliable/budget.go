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

// The memory ceiling's rules (Config.MaxMemory, docs/PROTOCOL.md §8.11).
// Every session may hold its floor, MaxMemory / (2 × MaxSessions), whatever
// the others hold: a session grows beyond its floor only while the
// endpoint holds at most half the ceiling after it (and, beyond a quarter,
// only within its fair share, half the ceiling divided by the live
// sessions). The sessions beyond their floors therefore hold at most half
// the ceiling together (since the last such growth they only shrank), the
// floors of at most MaxSessions sessions the other half, and no order of
// arrival lets the first sessions leave a newcomer nothing: the fair share
// alone let the first take half, the second a quarter, the third a sixth
// and the fourth the rest.
func (s *Session) memFloor() int64 {
	return s.ep.cfg.MaxMemory / (2 * int64(max(1, s.ep.cfg.MaxSessions)))
}

// memAllowsLocked reports whether the session may take n more bytes of
// stream buffers when the endpoint's sessions hold used bytes.
func (s *Session) memAllowsLocked(used int64, n int) bool {
	limit := s.ep.cfg.MaxMemory
	after, mine := used+int64(n), int64(s.mem+n)
	switch {
	case after > limit:
		return false
	case mine <= s.memFloor():
		return true
	case after > limit/2:
		return false
	case after > limit/4:
		return mine <= s.fairShare()
	}
	return true
}

// fairShare is what a session may hold beyond a quarter of the ceiling.
func (s *Session) fairShare() int64 {
	return s.ep.cfg.MaxMemory / (2 * int64(max(1, s.ep.live.Load())))
}

// reserveMemLocked charges n bytes of stream buffers to the session and
// its endpoint if memAllowsLocked allows them, in one step: the check and
// the charge are one compare-and-swap, so that the sessions of an endpoint,
// each under its own lock, cannot all pass the check at once and together
// overshoot the ceiling. The caller then grows a ring by exactly n
// (growRingLocked with reserved n) or gives the charge back.
func (s *Session) reserveMemLocked(n int) bool {
	if s.memReleased { // the session ended: its buffers belong to nobody
		s.mem += n
		return true
	}
	for {
		used := s.ep.mem.Load()
		if !s.memAllowsLocked(used, n) {
			return false
		}
		if s.ep.mem.CompareAndSwap(used, used+int64(n)) {
			s.mem += n
			s.stats.bufs.Add(int64(n))
			return true
		}
	}
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
	s.stats.bufs.Add(int64(delta))
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
	s.stats.bufs.Store(0)
	s.ep.mem.Add(-int64(s.mem))
	s.ep.wakeMemWaiters(math.MinInt64) // the fair shares grew: everyone looks again
}

// growRingLocked is bufPool.growRing with the change of capacity charged;
// reserved bytes of it were charged already (reserveMemLocked).
func (s *Session) growRingLocked(buf []byte, base, lo, hi uint64, n int, recv bool, reserved int) ([]byte, uint64) {
	old := len(buf)
	nb, nbase := s.ep.bufs.growRing(buf, base, lo, hi, n)
	d := len(nb) - old
	s.chargeLocked(d - reserved)
	if recv {
		s.recvMem += d
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
// memory is released: until the endpoint is below the ceiling by cost (a
// session within its floor), below a quarter of it by cost (a session
// beyond its fair share) or else below half of it by cost.
func (s *Session) addMemWaiterLocked(st *Stream, cost int) {
	e := s.ep
	limit, mine := e.cfg.MaxMemory, int64(s.mem+cost)
	at := limit - int64(cost) // memAllowsLocked's rules, backwards
	switch {
	case mine <= s.memFloor():
	case mine > s.fairShare():
		at = limit/4 - int64(cost)
	default:
		at = limit/2 - int64(cost)
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
