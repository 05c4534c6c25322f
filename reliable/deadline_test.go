package reliable

import (
	"testing"
	"time"
)

// returnsWithin fails the test unless f returns within d (it runs f on its
// own goroutine so that a hang is reported, not waited for).
func returnsWithin(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestDeadlineSetAfterStop: setting a deadline after stop (a closed stream)
// returns at once whatever state the stopped timer was in.
func TestDeadlineSetAfterStop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first time.Time
	}{
		{"pending timer", time.Now().Add(time.Hour)},
		{"fired timer", time.Now().Add(time.Millisecond)},
		{"passed", time.Now().Add(-time.Second)},
		{"none", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeadline()
			d.set(tc.first)
			if tc.name == "fired timer" {
				select {
				case <-d.wait():
				case <-time.After(10 * time.Second):
					t.Fatal("a 1 ms deadline did not expire in 10 s")
				}
			}
			d.stop()
			for _, next := range []time.Time{{}, time.Now().Add(time.Hour), time.Now().Add(-time.Second), {}} {
				returnsWithin(t, 10*time.Second, "set after stop", func() { d.set(next) })
			}
			if closedChan(d.wait()) {
				t.Fatal("deadline cleared last, but its channel is closed")
			}
			d.stop()
		})
	}
}

// TestStreamDeadlineAfterClose: a stream's deadlines can be set and cleared
// after Close, as franz-go does when a read fails on a conn it closed (it
// hung there before, stalling every request on the connection).
func TestStreamDeadlineAfterClose(t *testing.T) {
	c, _ := loopStreams(t, nil)
	c.SetReadDeadline(time.Now().Add(time.Hour))
	c.SetWriteDeadline(time.Now().Add(time.Hour))
	c.Close()
	returnsWithin(t, 10*time.Second, "SetReadDeadline after Close", func() { c.SetReadDeadline(time.Time{}) })
	returnsWithin(t, 10*time.Second, "SetWriteDeadline after Close", func() { c.SetWriteDeadline(time.Time{}) })
	returnsWithin(t, 10*time.Second, "SetDeadline after Close", func() { c.SetDeadline(time.Now().Add(time.Minute)) })
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
}
