package reliable

import (
	"bytes"
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
	"github.com/raptormq/raptor/wire"
)

// ccUndoState is the part of a controller's state an undo restores.
type ccUndoState struct {
	cwnd, ssthresh int
	wMax, k        float64
	epoch          time.Time
	inRecovery     bool
}

func ccStateOf(t *testing.T, cc CongestionControl) ccUndoState {
	t.Helper()
	switch c := cc.(type) {
	case *cubic:
		return ccUndoState{cwnd: c.cwnd, ssthresh: c.ssthresh, wMax: c.wMax, k: c.k, epoch: c.epoch, inRecovery: c.inRecovery}
	case *newReno:
		return ccUndoState{cwnd: c.cwnd, ssthresh: c.ssthresh}
	}
	t.Fatalf("controller %T has no undo state", cc)
	return ccUndoState{}
}

// TestUndo: spurious-loss undo (docs/PROTOCOL.md §8.13) on a hand-advanced
// clock, for CUBIC (every loss congestion) and NewReno. Every case starts
// from an RTT sample of 1 ms and 20 packets of 1200 bytes in flight, sent at
// 2 ms, numbered 1..20; it then runs its steps and checks whether the
// controller's state came back to what it was before the first loss.
func TestUndo(t *testing.T) {
	ms := time.Millisecond
	rng := func(lo, hi uint64) wire.AckRange { return wire.AckRange{Smallest: lo, Largest: hi} }
	type step struct {
		at       time.Duration // since t0; ignored by timeouts, which run at the deadline
		timeout  bool          // run onTimeout at the next deadline
		send     int           // packets to send
		ack, nak []wire.AckRange
	}
	for _, tc := range []struct {
		name      string
		steps     []step
		restored  bool   // the state before the first loss is back
		noCut     bool   // nothing reduces the window (one timeout): restored is not asked
		undos     uint64 // CounterUndos
		rtos      uint64 // CounterSpuriousRTOs
		spurLoss  uint64 // CounterSpuriousLosses
		wantPTOs  int    // ptoCount at the end
		wantTimes uint64 // CounterRTOs
	}{
		{
			name: "three spurious timeouts undone",
			steps: []step{
				{timeout: true}, {timeout: true}, {timeout: true}, // persistent congestion
				{at: 60 * ms, ack: []wire.AckRange{rng(1, 20)}},
			},
			restored: true, undos: 1, rtos: 3, wantTimes: 3,
		},
		{
			name: "spurious timeout among acknowledged packets undone",
			steps: []step{
				{timeout: true},
				{at: 8 * ms, ack: []wire.AckRange{rng(2, 10)}},
				{at: 9 * ms, ack: []wire.AckRange{rng(1, 20)}},
			},
			noCut: true, undos: 1, rtos: 1, wantTimes: 1,
		},
		{
			name: "spurious NAK loss undone",
			steps: []step{
				{at: 3 * ms, nak: []wire.AckRange{rng(5, 5)}},
				{at: 4 * ms, ack: []wire.AckRange{rng(1, 20)}},
			},
			restored: true, undos: 1, spurLoss: 1,
		},
		{
			name: "two spurious NAK losses of one event undone",
			steps: []step{
				{at: 3 * ms, nak: []wire.AckRange{rng(5, 5), rng(9, 9)}},
				{at: 4 * ms, ack: []wire.AckRange{rng(1, 8), rng(10, 20)}},
				{at: 5 * ms, ack: []wire.AckRange{rng(1, 20)}},
			},
			restored: true, undos: 1, spurLoss: 2,
		},
		{
			name: "real NAK loss not undone",
			steps: []step{
				{at: 3 * ms, nak: []wire.AckRange{rng(5, 5)}},
				{at: 4 * ms, ack: []wire.AckRange{rng(1, 4), rng(6, 20)}},
				{at: 50 * ms, send: 1},
				{at: 100 * ms, ack: []wire.AckRange{rng(1, 4), rng(6, 21)}},
			},
		},
		{
			name: "one spurious and one real loss in an event: no undo",
			steps: []step{
				{at: 3 * ms, nak: []wire.AckRange{rng(5, 5), rng(9, 9)}},
				{at: 4 * ms, ack: []wire.AckRange{rng(1, 8), rng(10, 20)}},
				{at: 50 * ms, send: 1},
				{at: 100 * ms, ack: []wire.AckRange{rng(1, 8), rng(10, 21)}},
			},
			spurLoss: 1,
		},
		{
			name: "real timeouts not undone",
			steps: []step{
				{timeout: true}, {timeout: true}, {timeout: true},
				{at: 60 * ms, ack: []wire.AckRange{rng(4, 20)}},
				{at: 200 * ms, send: 1},
				{at: 300 * ms, ack: []wire.AckRange{rng(4, 21)}},
			},
			wantTimes: 3,
		},
		{
			name: "spurious loss after the episode ended real: no undo",
			steps: []step{
				{at: 3 * ms, nak: []wire.AckRange{rng(5, 5)}},
				{at: 4 * ms, ack: []wire.AckRange{rng(1, 4), rng(6, 20)}},
				{at: 50 * ms, send: 1},
				{at: 100 * ms, ack: []wire.AckRange{rng(1, 4), rng(6, 21)}},
				{at: 101 * ms, ack: []wire.AckRange{rng(1, 21)}}, // too late to prove anything
			},
		},
	} {
		for _, alg := range []string{"cubic", "newreno"} {
			t.Run(tc.name+"/"+alg, func(t *testing.T) {
				r, st := testRecovery(t, &Config{Congestion: alg, LossTolerance: -1})
				h := &recHandler{}
				send(r, t0, 1, 1200)
				if err := r.onAck(ack(rng(0, 0)), t0.Add(ms), h); err != nil {
					t.Fatal(err)
				}
				send(r, t0.Add(2*ms), 20, 1200)
				before := ccStateOf(t, r.cc)
				now := t0
				reduced := false
				for i, s := range tc.steps {
					if s.timeout {
						now = r.nextDeadline()
						if !r.onTimeout(now, h) {
							t.Fatalf("step %d: no probe timeout at %v", i, now.Sub(t0))
						}
					} else {
						now = t0.Add(s.at)
					}
					if s.send > 0 {
						send(r, now, s.send, 1200)
					}
					if s.nak != nil {
						r.onNak(&wire.NakFrame{Ranges: s.nak}, now, h)
					}
					if s.ack != nil {
						// ACK ranges go largest first on the wire.
						f := &wire.AckFrame{}
						for j := len(s.ack) - 1; j >= 0; j-- {
							f.Ranges = append(f.Ranges, s.ack[j])
						}
						if err := r.onAck(f, now, h); err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
					}
					if ccStateOf(t, r.cc).cwnd < before.cwnd {
						reduced = true
					}
					live := 0
					for _, lr := range r.rack.recentLost {
						if !lr.lostAt.IsZero() {
							live++
						}
					}
					if live != r.rack.lostLive {
						t.Fatalf("step %d: %d records of recentLost in use, lostLive says %d", i, live, r.rack.lostLive)
					}
				}
				if tc.noCut {
					if reduced {
						t.Errorf("window below its %d bytes after one timeout", before.cwnd)
					}
				} else if !reduced {
					t.Fatalf("the window never went below its %d bytes: the case tests nothing", before.cwnd)
				}
				after := ccStateOf(t, r.cc)
				if got := after == before; got != tc.restored && !tc.noCut {
					t.Errorf("state restored %v, want %v:\nbefore %+v\nafter  %+v", got, tc.restored, before, after)
				}
				if !tc.restored && !tc.noCut && after.cwnd >= before.cwnd {
					t.Errorf("window %d after a real loss, want below %d", after.cwnd, before.cwnd)
				}
				for _, c := range []struct {
					ctr  Counter
					want uint64
				}{{CounterUndos, tc.undos}, {CounterSpuriousRTOs, tc.rtos}, {CounterSpuriousLosses, tc.spurLoss}, {CounterRTOs, tc.wantTimes}} {
					if got := st.c[c.ctr].Load(); got != c.want {
						t.Errorf("%s = %d, want %d", counterTable[c.ctr].Family, got, c.want)
					}
				}
				if r.ptoCount != tc.wantPTOs {
					t.Errorf("ptoCount %d, want %d", r.ptoCount, tc.wantPTOs)
				}
				if r.undo.open && r.undo.pending == 0 {
					t.Errorf("episode left open with no loss pending")
				}
			})
		}
	}
}

// TestSimDelaySpikeUndone: a one-off delay spike on the ACK path (40 ms
// for what the server sends within 40 ms, as a stalled host holds its
// datagrams) makes the client's probe timeouts fire three times, which
// collapses its window (persistent congestion); the late ACKs acknowledge
// the very packets the timeouts declared lost, so the timeouts were
// spurious and the window comes back at once (docs/PROTOCOL.md §8.13).
func TestSimDelaySpikeUndone(t *testing.T) {
	const seed = 1
	t.Logf("seed %d", seed)
	synctest.Test(t, func(t *testing.T) {
		link := simnet.LinkConfig{Delay: time.Millisecond}
		// A capped window: 64 KiB per 2 ms round trip moves 4 MiB in about
		// 130 ms, the spike in the middle.
		nw, l, s := simPair(t, seed, link, &Config{MaxCongestionWindow: 64 << 10})
		defer nw.Close()
		const size = 4 << 20
		payload := bytes.Repeat([]byte("spike"), size/5)
		got := make(chan []byte, 1)
		go func() {
			st, err := l.AcceptStream(context.Background())
			if err != nil {
				t.Errorf("accept: %v", err)
				got <- nil
				return
			}
			b, err := io.ReadAll(st)
			if err != nil {
				t.Errorf("server read: %v", err)
			}
			got <- b
		}()
		st, err := s.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		window := func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.rec.cc.Window() // the controller's, not capped by MaxCongestionWindow
		}
		var before, after int
		var rtosAfter uint64
		spike := simnet.LinkConfig{Delay: 40 * time.Millisecond}
		const at, length = 50 * time.Millisecond, 40 * time.Millisecond
		done := make(chan struct{})
		time.AfterFunc(at, func() {
			before = window()
			if err := nw.SetLink(simServer, simClient, spike); err != nil {
				t.Error(err)
			}
			time.AfterFunc(length, func() {
				if err := nw.SetLink(simServer, simClient, link); err != nil {
					t.Error(err)
				}
				// The first ACK sent in the spike arrives now; look a few
				// round trips later.
				time.AfterFunc(length/4, func() {
					after = window()
					rtosAfter = s.Stats().Counters[CounterRTOs]
					close(done)
				})
			})
		})
		go func() {
			st.Write(payload)
			st.CloseWrite()
		}()
		b := <-got
		<-done
		if !bytes.Equal(b, payload) {
			t.Fatalf("server got %d bytes, want the %d written", len(b), len(payload))
		}
		c := s.Stats().Counters
		t.Logf("window %d before the spike, %d after; rtos %d (%d by then), spurious %d, undos %d, retransmits %d",
			before, after, c[CounterRTOs], rtosAfter, c[CounterSpuriousRTOs], c[CounterUndos], c[CounterRetransmits])
		if rtosAfter < persistentPTOs {
			t.Fatalf("%d probe timeouts during the spike, want %d or more: the test no longer collapses the window", rtosAfter, persistentPTOs)
		}
		if c[CounterSpuriousRTOs] < persistentPTOs || c[CounterUndos] < 1 {
			t.Errorf("spurious timeouts %d, undos %d; want >= %d and >= 1", c[CounterSpuriousRTOs], c[CounterUndos], persistentPTOs)
		}
		if after < before {
			t.Errorf("window %d bytes after the spike, below its %d before: the collapse was not undone", after, before)
		}
	})
}

// fakeWaiter is a socket whose waiting datagrams the test decides.
type fakeWaiter struct {
	waiting bool
	asked   int
}

func (w *fakeWaiter) Pending() bool { w.asked++; return w.waiting }

// TestPTOHold: a probe timeout due while received datagrams wait in the
// socket is held ptoHoldTime at a time, at most maxPTOHolds times in a row;
// with nothing waiting it fires at once, and an acknowledgement in between
// starts the count again.
func TestPTOHold(t *testing.T) {
	for _, tc := range []struct {
		name      string
		waiting   bool
		nilWaiter bool
		ackAfter  int // holds after which an ACK of the oldest packet arrives (0: none)
		wantHolds int // holds before the timeout fires
	}{
		{name: "nothing waiting: fires at once", wantHolds: 0},
		{name: "no waiter: fires at once", nilWaiter: true, waiting: true, wantHolds: 0},
		{name: "datagrams waiting: held, then fires", waiting: true, wantHolds: maxPTOHolds},
		{name: "an ACK after two holds starts again", waiting: true, ackAfter: 2, wantHolds: maxPTOHolds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, st := testRecovery(t, nil)
			w := &fakeWaiter{waiting: tc.waiting}
			if !tc.nilWaiter {
				r.rx = w
			}
			h := &recHandler{}
			pns := send(r, t0, 3, 1200)
			due := r.nextDeadline()
			now := due
			holds := 0
			for {
				if r.onTimeout(now, h) {
					break
				}
				holds++
				if holds > 2*maxPTOHolds {
					t.Fatalf("no timeout after %d holds", holds)
				}
				next := r.nextDeadline()
				if want := now.Add(ptoHoldTime); !next.Equal(want) {
					t.Fatalf("hold %d: next deadline %v, want %v", holds, next.Sub(t0), want.Sub(t0))
				}
				now = next
				if tc.ackAfter > 0 && holds == tc.ackAfter && len(h.acked) == 0 {
					if err := r.onAck(ack(wire.AckRange{Smallest: pns[0], Largest: pns[0]}), now, h); err != nil {
						t.Fatal(err)
					}
					holds = 0 // the count starts again, at the new deadline
					now = r.nextDeadline()
				}
			}
			if holds != tc.wantHolds {
				t.Errorf("held %d times, want %d", holds, tc.wantHolds)
			}
			if st.c[CounterRTOs].Load() != 1 {
				t.Errorf("rtos %d, want 1", st.c[CounterRTOs].Load())
			}
			wantHeld := uint64(tc.wantHolds + tc.ackAfter)
			if got := st.c[CounterPTOHolds].Load(); got != wantHeld {
				t.Errorf("pto_holds %d, want %d", got, wantHeld)
			}
			if tc.nilWaiter && w.asked != 0 {
				t.Errorf("asked a socket that is not set %d times", w.asked)
			}
		})
	}
}
