package reliable

import (
	"sync/atomic"
	"time"
)

// Reader leadership: the goroutine blocked in Stream.Read reads the socket
// itself while nobody else does, so a request/response exchange costs the
// system calls of raw UDP, without a goroutine hand-off from the receive loop
// (docs/ARCHITECTURE.md, "Round trip at the floor").
//
// One token per endpoint says who may call PacketConn.ReadBatch and use the
// endpoint's receive scratch (rbufs, touched, the frame parsers, the reply
// buffer): the receive loop (tokLoop), a blocked Read (tokReader), or nobody
// (tokFree, the loop parked on a channel). Moving the token is an atomic
// store or compare-and-swap, so whatever one holder wrote the next one sees.
//
//   - The loop lends the token (tokLoop -> tokFree) after a batch when a Read
//     waited for data since it last looked (wanted, or waiters > 0): that
//     Read, woken with its data, will soon want to read again. It nudges one
//     waiter (the free channel) and parks.
//   - A Read with nothing to return takes a free token (tokFree -> tokReader)
//     and reads and dispatches batches for every session of the endpoint
//     (handleDatagram, afterReceive) until its own stream has something for
//     it, its deadline passes or the stream or session ends; then it frees
//     the token again, nudging the next waiting Read if there is one.
//   - Nobody holds a free token for long: the loop's timer takes it back when
//     no reader took it for a whole period (the period after a release, at
//     most twice that), so datagrams for sessions nobody reads (other
//     sessions of a listener, ACKs for a writer that never reads) wait at
//     most that long. The period starts at bound and doubles, up to
//     maxLeadPeriods bounds, each time the timer finds that readers took
//     the token meanwhile; a reclaim starts it at bound again. A request/
//     response exchange keeps the token busy, and every timer that fires
//     can wake a second thread of the runtime (a context switch in the
//     exchange's tail), so the timer fires a quarter as often while
//     readers keep reading. A reader that keeps reading keeps the token and
//     the loop stays parked; a leader blocked on an idle socket costs
//     nothing.
//   - A leader blocked in ReadBatch is interrupted (a read deadline in the
//     past on the PacketConn) when its stream is closed, its session ends or
//     its read deadline passes; the holder of the token clears that deadline
//     before it looks at its state again, so no interrupt is lost.
//   - When the PacketConn is closed, or a read fails, the leader hands the
//     token to the loop, which sees the close and ends, or retries the
//     socket with a back-off (readLoop): nobody spins on a failing socket,
//     and the loop does not lend the token after a failed read.
//
// A PacketConn that cannot interrupt a blocked ReadBatch (no SetReadDeadline:
// DPDK ports, loss injectors) keeps the receive loop as its only reader.

const (
	tokLoop   int32 = iota // the receive loop holds the token (reads, or is about to)
	tokFree                // nobody reads: the loop is parked, a Read may take the token
	tokReader              // a blocked Read reads and dispatches for the endpoint
)

// minLeadBound is the shortest leadership.bound (the runtime's network poller
// sleeps in whole milliseconds anyway).
const minLeadBound = 500 * time.Microsecond

// maxLeadPeriods bounds the timer's period, in bounds, while readers keep
// taking the token: at the defaults 2 ms, so a datagram that waits for a
// reader waits at most 4 ms (a period and the doubled one after it), under
// the default MinRTO.
const maxLeadPeriods = 4

// readDeadliner is the capability of a PacketConn that reader leadership
// needs: a ReadBatch blocked (or about to block) returns an error wrapping
// os.ErrDeadlineExceeded once a deadline in the past is set, and the zero
// time clears it. *udpio.Conn has it (as every net.PacketConn does).
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// longAgo is the deadline that interrupts a blocked ReadBatch.
var longAgo = time.Unix(1, 0)

// leadership is an endpoint's read token and what moves it.
type leadership struct {
	dl      readDeadliner // nil: readers never lead, the loop alone reads
	state   atomic.Int32
	gen     atomic.Uint64          // times a reader took the token
	waiters atomic.Int32           // Reads waiting for data while the token is taken
	wanted  atomic.Bool            // a Read found the token taken since the loop last lent it
	leader  atomic.Pointer[Stream] // the stream whose Read leads, if any
	armed   atomic.Bool            // timer is set (whoever sets armed resets it)
	closed  atomic.Bool            // the packet conn is closed: the loop must end
	wake    chan struct{}          // cap 1: the parked loop looks at the state again
	free    chan struct{}          // cap 1: one waiting Read may take the token
	timer   *time.Timer            // takes a free token back
	bound   time.Duration          // shortest timer period
	period  atomic.Int64           // timer period now, from bound to maxLeadPeriods*bound (nanoseconds)

	// The holder of the token only.
	seenGen  uint64 // the loop: gen when it last looked, while lending
	failures int    // consecutive failed reads
}

func (l *leadership) init(pc PacketConn, cfg *Config) {
	l.wake = make(chan struct{}, 1)
	l.free = make(chan struct{}, 1)
	if dl, ok := pc.(readDeadliner); ok && !disableLeadership.Load() {
		l.dl = dl
	}
	l.bound = max(cfg.MaxAckDelay/2, minLeadBound)
	l.period.Store(int64(l.bound))
	l.timer = time.NewTimer(time.Hour)
	l.timer.Stop()
}

// disableLeadership is a test hook: endpoints made while it is set never
// let readers lead (today's path, for comparison).
var disableLeadership atomic.Bool

// take gives the calling Read the token if it is free.
func (l *leadership) take() bool {
	if l.dl == nil || l.state.Load() != tokFree || l.closed.Load() || !l.state.CompareAndSwap(tokFree, tokReader) {
		return false
	}
	l.gen.Add(1)
	return true
}

// arm makes sure the timer will look at a free token.
func (l *leadership) arm() {
	if l.armed.CompareAndSwap(false, true) {
		l.timer.Reset(time.Duration(l.period.Load()))
	}
}

// readersActive lengthens the timer's period: readers took the token in the
// period that just ended. Called by the loop when its timer fires.
func (l *leadership) readersActive() {
	if p := 2 * l.period.Load(); p <= maxLeadPeriods*int64(l.bound) {
		l.period.Store(p)
	}
}

// release frees the token of a leader that is done.
func (l *leadership) release() {
	l.state.Store(tokFree)
	if l.closed.Load() {
		signal(l.wake)
		return
	}
	if l.waiters.Load() > 0 {
		signal(l.free)
	}
	l.arm()
}

// handBack gives the token to the loop (the packet conn is closed).
func (l *leadership) handBack() {
	l.state.Store(tokLoop)
	signal(l.wake)
}

// interrupt makes st's leading Read, if it leads, return from ReadBatch and
// look at its state again. Callers change that state first.
func (l *leadership) interrupt(st *Stream) {
	if l.dl != nil && l.leader.Load() == st {
		l.dl.SetReadDeadline(longAgo)
	}
}

// closing tells the loop, wherever the token is, that the packet conn has
// been closed. Call after closing it.
func (l *leadership) closing() {
	l.closed.Store(true)
	signal(l.wake)
}

// lendWanted reports whether the loop should lend the token after a batch.
func (l *leadership) lendWanted() bool {
	if l.dl == nil {
		return false
	}
	if l.wanted.Load() {
		l.wanted.Store(false)
		return true
	}
	return l.waiters.Load() > 0
}

// lend frees the token from the receive loop, nudges a waiting Read, and
// parks until the loop holds the token again: handed back, or taken back
// because no reader took it for a whole timer period, or the conn closed.
func (e *endpoint) lend() {
	l := &e.lead
	l.state.Store(tokFree)
	signal(l.free)
	// Take the token back only after a full period in which no reader took
	// it (a stale timer value from an earlier period only starts one).
	l.seenGen = l.gen.Load() - 1
	l.arm()
	last := l.gen.Load() // for the period: readers took the token since the last fire
	for {
		select {
		case <-l.wake:
		case <-l.timer.C:
			l.armed.Store(false)
			if g := l.gen.Load(); g != last {
				l.readersActive()
				last = g
			}
		}
		switch l.state.Load() {
		case tokLoop:
			l.period.Store(int64(l.bound))
			return
		case tokFree:
			g := l.gen.Load()
			if (g == l.seenGen || l.closed.Load()) && l.state.CompareAndSwap(tokFree, tokLoop) {
				l.period.Store(int64(l.bound))
				return
			}
			l.seenGen = g
			l.arm()
		case tokReader:
			// The leader's release arms the timer again.
		}
	}
}

// leadRead reads and dispatches datagrams on the goroutine of st's Read
// call id, which holds the token, until st has something for that Read;
// then it frees the token (or, when the packet conn is closed, gives it to
// the loop).
func (e *endpoint) leadRead(st *Stream, id uint64) {
	l := &e.lead
	l.leader.Store(st)
	for !st.readReady(id) {
		if e.readOnce() != readAgain {
			// Closed, or failing: the loop sees the close, or retries the
			// socket with a back-off, while this Read waits for it.
			l.leader.Store(nil)
			l.handBack()
			return
		}
	}
	l.leader.Store(nil)
	l.release()
}

// readReady reports whether Read call id has something to return: data (in
// the ring or in its buffer), EOF, an
// error, a closed stream or a passed deadline.
func (st *Stream) readReady(id uint64) bool {
	if closedChan(st.rdl.wait()) {
		return true
	}
	s := st.s
	s.mu.Lock()
	ready := st.closed || st.readErr != nil || st.contiguousLocked() > st.readOff || (st.finRecv && st.readOff == st.finalSize) ||
		(st.direct == nil && st.directN > 0 && st.directID == id) // copied into its buffer (takeDirectLocked)
	s.mu.Unlock()
	return ready
}
