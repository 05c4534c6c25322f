package reliable

import (
	"sync"
	"sync/atomic"
	"time"
)

// deadline is a settable point in time whose expiry closes a channel, so a
// blocked Read or Write can select on it. Setting a new deadline while a call
// is blocked takes effect at once.
type deadline struct {
	mu    sync.Mutex // serialises set and stop
	timer *time.Timer
	// ch is the channel closed when the deadline has passed, replaced (under
	// mu) only when a new deadline follows an expired one. wait, on every
	// Read and Write, loads it without the mutex.
	ch atomic.Pointer[chan struct{}]
	// expired, when set, runs after ch is closed (it interrupts a Read
	// that leads the socket, leader.go). Set before first use.
	expired func()
}

func newDeadline() *deadline {
	d := &deadline{}
	d.renew()
	return d
}

// renew gives the deadline a new open channel (under mu, or before use).
func (d *deadline) renew() {
	c := make(chan struct{})
	d.ch.Store(&c)
}

func closedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.wait() // the timer fired: wait until its callback closed ch
	}
	d.timer = nil
	expired := closedChan(d.wait())
	if t.IsZero() {
		if expired {
			d.renew()
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if expired {
			d.renew()
		}
		ch, f := d.wait(), d.expired
		d.timer = time.AfterFunc(dur, func() {
			close(ch)
			if f != nil {
				f()
			}
		})
		return
	}
	if !expired {
		close(d.wait())
		if d.expired != nil {
			d.expired()
		}
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadline) wait() chan struct{} { return *d.ch.Load() }

// stop cancels a pending deadline's timer (the stream is closed). Later
// calls to set still work: the timer is forgotten once stopped, or once its
// callback, if it already fired, has closed ch. (Keeping a stopped timer made
// the next set wait for a close that never came: franz-go clears a conn's
// read deadline after a read that failed because the conn was closed, and
// its connection goroutine hung there for good, stalling every request on
// that broker connection.)
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.wait() // the timer fired: wait until its callback closed ch
	}
	d.timer = nil
}
