package reliable

import (
	"sync"
	"time"
)

// deadline is a settable point in time whose expiry closes a channel, so a
// blocked Read or Write can select on it. Setting a new deadline while a call
// is blocked takes effect at once.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{} // closed when the deadline has passed
	// expired, when set, runs after ch is closed (it interrupts a Read
	// that leads the socket, leader.go). Set before first use.
	expired func()
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

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
		<-d.ch // the timer fired: wait until its callback closed ch
	}
	d.timer = nil
	expired := closedChan(d.ch)
	if t.IsZero() {
		if expired {
			d.ch = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if expired {
			d.ch = make(chan struct{})
		}
		ch, f := d.ch, d.expired
		d.timer = time.AfterFunc(dur, func() {
			close(ch)
			if f != nil {
				f()
			}
		})
		return
	}
	if !expired {
		close(d.ch)
		if d.expired != nil {
			d.expired()
		}
	}
}

// wait returns a channel that is closed when the deadline passes.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

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
		<-d.ch // the timer fired: wait until its callback closed ch
	}
	d.timer = nil
}
