package reliable

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raptormq/raptor/wire"
)

// Unit tests of the recovery types on a hand-advanced clock: no network, no
// goroutines, no wall clock.

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// recHandler records what recovery acked and lost.
type recHandler struct{ acked, lost []uint64 }

func (h *recHandler) onPacketAcked(p *sentPacket) { h.acked = append(h.acked, p.pn) }
func (h *recHandler) onPacketLost(p *sentPacket)  { h.lost = append(h.lost, p.pn) }

func testRecovery(t *testing.T, cfg *Config) (*recovery, *counters) {
	t.Helper()
	c, err := cfg.populate()
	if err != nil {
		t.Fatal(err)
	}
	var st counters
	r := newRecovery(c, 1, &st)
	r.peerAckDelay = time.Millisecond
	r.nextSkip = math.MaxUint64 // no skipping unless a test asks for it
	return r, &st
}

// send sends n ack-eliciting packets of size bytes at now, returning their
// numbers.
func send(r *recovery, now time.Time, n, size int) []uint64 {
	var pns []uint64
	for range n {
		pn := r.takePacketNumber()
		rec := sentPacket{pn: pn, sentAt: now, size: size}
		r.onPacketSent(&rec, now, true)
		pns = append(pns, pn)
	}
	return pns
}

func ack(ranges ...wire.AckRange) *wire.AckFrame {
	return &wire.AckFrame{Ranges: ranges}
}

func TestRTTStats(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name                   string
		samples, delays        []time.Duration
		smoothed, latest, minR time.Duration
	}{
		{"first sample", []time.Duration{10 * ms}, []time.Duration{0}, 10 * ms, 10 * ms, 10 * ms},
		{"ack delay subtracted", []time.Duration{10 * ms, 12 * ms}, []time.Duration{0, 2 * ms}, 10 * ms, 12 * ms, 10 * ms},
		{"ack delay not below min", []time.Duration{10 * ms, 11 * ms}, []time.Duration{0, 5 * ms}, 10*ms + ms/8, 11 * ms, 10 * ms},
		{"smoothing 7/8", []time.Duration{8 * ms, 16 * ms}, []time.Duration{0, 0}, 9 * ms, 16 * ms, 8 * ms},
		{"zero sample floored", []time.Duration{0}, []time.Duration{0}, time.Microsecond, time.Microsecond, time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r RTTStats
			if r.SmoothedRTT() != initialRTT || r.HasSample() {
				t.Fatalf("before samples: srtt %v, has %v", r.SmoothedRTT(), r.HasSample())
			}
			for i, s := range tc.samples {
				r.update(s, tc.delays[i])
			}
			if r.SmoothedRTT() != tc.smoothed || r.LatestRTT() != tc.latest || r.MinRTT() != tc.minR {
				t.Errorf("srtt %v latest %v min %v, want %v %v %v", r.SmoothedRTT(), r.LatestRTT(), r.MinRTT(), tc.smoothed, tc.latest, tc.minR)
			}
		})
	}
}

// TestAckDelayClamped: the ACK delay of #9's first row (µs that overflow
// when converted) is clamped to max_ack_delay before conversion, so the RTT
// stays the real one (RFC 9002 §5.3).
func TestAckDelayClamped(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delay     uint64 // µs, as on the wire
		wantDelay time.Duration
		clamped   uint64
	}{
		{"within", 500, 500 * time.Microsecond, 0},
		{"at max", 1000, time.Millisecond, 0},
		{"above max", 5000, time.Millisecond, 1},
		{"overflowing", 13835058055282164, time.Millisecond, 1},
		{"largest varint", 1<<62 - 1, time.Millisecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, st := testRecovery(t, nil)
			if d := r.ackDelay(tc.delay); d != tc.wantDelay {
				t.Errorf("ackDelay(%d µs) = %v, want %v", tc.delay, d, tc.wantDelay)
			}
			if got := st.c[CounterLimitAckDelay].Load(); got != tc.clamped {
				t.Errorf("clamp counter %d, want %d", got, tc.clamped)
			}
			// Through an ACK: 5 ms real RTT, the huge delay cannot make it absurd.
			pns := send(r, t0, 1, 1200)
			f := ack(wire.AckRange{Smallest: pns[0], Largest: pns[0]})
			f.AckDelay = tc.delay
			if err := r.onAck(f, t0.Add(5*time.Millisecond), &recHandler{}); err != nil {
				t.Fatal(err)
			}
			if srtt := r.rtt.SmoothedRTT(); srtt <= 0 || srtt > 5*time.Millisecond {
				t.Errorf("srtt %v after a 5 ms round trip with ACK delay %d µs", srtt, tc.delay)
			}
		})
	}
}

func TestNewReno(t *testing.T) {
	const mss = 1000
	type step struct {
		op     string // "ack", "loss", "persistent"
		at     time.Duration
		sentAt time.Duration
		bytes  int
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  int
	}{
		{"initial", nil, initialWindowPackets * mss},
		{"slow start grows by acked bytes", []step{{"ack", 10, 0, 3000}}, initialWindowPackets*mss + 3000},
		{"loss halves", []step{{"loss", 10, 5, mss}}, initialWindowPackets * mss / 2},
		{"one reduction per recovery period", []step{{"loss", 10, 5, mss}, {"loss", 11, 6, mss}}, initialWindowPackets * mss / 2},
		{"new period after recovery", []step{{"loss", 10, 5, mss}, {"loss", 30, 20, mss}}, initialWindowPackets * mss / 4},
		{"no growth for packets sent before recovery", []step{{"loss", 10, 5, mss}, {"ack", 12, 8, 5000}}, initialWindowPackets * mss / 2},
		{"congestion avoidance: one mss per window", []step{{"loss", 10, 5, mss}, {"ack", 20, 15, initialWindowPackets * mss / 2}}, initialWindowPackets*mss/2 + mss},
		{"persistent congestion", []step{{"persistent", 10, 0, 0}}, minWindowPackets * mss},
		{"floor", []step{{"loss", 10, 5, mss}, {"loss", 30, 20, mss}, {"loss", 50, 40, mss}, {"loss", 70, 60, mss}, {"loss", 90, 80, mss}, {"loss", 110, 100, mss}}, minWindowPackets * mss},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newNewReno(mss)
			for _, s := range tc.steps {
				now, sent := t0.Add(s.at*time.Millisecond), t0.Add(s.sentAt*time.Millisecond)
				switch s.op {
				case "ack":
					c.OnAck(now, s.bytes, sent, &RTTStats{})
				case "loss":
					c.OnLoss(now, s.bytes, sent)
				case "persistent":
					c.OnPersistentCongestion()
				}
			}
			if c.Window() != tc.want {
				t.Errorf("window %d, want %d", c.Window(), tc.want)
			}
		})
	}
}

func TestPacer(t *testing.T) {
	const cwnd, burst = 100_000, 10_000
	srtt := 10 * time.Millisecond // rate 1.25 × 100 kB / 10 ms = 12.5 bytes/µs
	var p pacer
	p.maxBurst = burst
	now := t0
	p.refill(now, cwnd, srtt)
	if p.budget != burst {
		t.Fatalf("first refill: budget %d, want the burst %d", p.budget, burst)
	}
	for _, tc := range []struct {
		name      string
		advance   time.Duration
		send      int
		wantDelay time.Duration
	}{
		{"burst allowed", 0, burst, 0},
		{"empty: wait at least the timer granularity", 0, 0, pacingGranularity}, // 1250 bytes at 12.5 B/µs would be 100µs
		{"refilled after 100µs", 100 * time.Microsecond, 1250, 0},
		{"long idle: a burst of 2ms at the rate", time.Second, 25_000, 0}, // 12.5 B/µs × 2 ms, more than the minimum burst
		{"and no more", 0, 0, pacingGranularity},
	} {
		now = now.Add(tc.advance)
		p.refill(now, cwnd, srtt)
		if tc.send > 0 {
			if d := p.delay(tc.send, cwnd, srtt); d != 0 {
				t.Errorf("%s: delay %v for %d bytes with budget %d", tc.name, d, tc.send, p.budget)
			}
			p.onSent(tc.send)
			continue
		}
		if d := p.delay(1250, cwnd, srtt); d != tc.wantDelay {
			t.Errorf("%s: delay %v, want %v", tc.name, d, tc.wantDelay)
		}
	}
}

func TestRangeSet(t *testing.T) {
	type op struct {
		remove bool
		lo, hi uint64
		added  uint64
	}
	for _, tc := range []struct {
		name string
		ops  []op
		want []span
	}{
		{"one", []op{{false, 1, 5, 4}}, []span{{1, 5}}},
		{"merge adjacent", []op{{false, 1, 5, 4}, {false, 5, 9, 4}}, []span{{1, 9}}},
		{"disjoint sorted", []op{{false, 10, 12, 2}, {false, 1, 3, 2}, {false, 5, 6, 1}}, []span{{1, 3}, {5, 6}, {10, 12}}},
		{"overlap counts new only", []op{{false, 1, 5, 4}, {false, 3, 8, 3}}, []span{{1, 8}}},
		{"bridge", []op{{false, 1, 3, 2}, {false, 5, 7, 2}, {false, 9, 11, 2}, {false, 2, 10, 4}}, []span{{1, 11}}},
		{"empty add", []op{{false, 4, 4, 0}}, nil},
		{"remove split", []op{{false, 1, 10, 9}, {true, 4, 6, 0}}, []span{{1, 4}, {6, 10}}},
		{"remove several", []op{{false, 1, 3, 2}, {false, 5, 7, 2}, {false, 9, 11, 2}, {true, 2, 10, 0}}, []span{{1, 2}, {10, 11}}},
		{"remove exact", []op{{false, 1, 3, 2}, {false, 5, 7, 2}, {true, 5, 7, 0}}, []span{{1, 3}}},
		{"remove nothing", []op{{false, 5, 7, 2}, {true, 1, 5, 0}, {true, 7, 9, 0}}, []span{{5, 7}}},
		{"trim below", []op{{false, 1, 3, 2}, {false, 5, 7, 2}, {true, 0, 6, 0}}, []span{{6, 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r rangeSet
			for _, o := range tc.ops {
				if o.remove {
					r.remove(o.lo, o.hi)
				} else if got := r.add(o.lo, o.hi); got != o.added {
					t.Errorf("add(%d,%d) = %d new, want %d", o.lo, o.hi, got, o.added)
				}
			}
			if !slices.Equal(r.s, tc.want) {
				t.Fatalf("spans %v, want %v", r.s, tc.want)
			}
			for _, sp := range tc.want {
				if !r.contains(sp.lo, sp.hi) || r.contains(sp.lo, sp.hi+1) || (sp.lo > 0 && r.contains(sp.lo-1, sp.hi)) {
					t.Errorf("contains wrong around %v in %v", sp, r.s)
				}
			}
		})
	}
}

func TestSentHistory(t *testing.T) {
	var h sentHistory
	for pn := range uint64(40) { // grows the ring twice
		*h.push() = sentPacket{pn: 2 * pn}
	}
	if h.len() != 40 || h.at(0).pn != 0 || h.at(39).pn != 78 {
		t.Fatalf("len %d first %d last %d", h.len(), h.at(0).pn, h.at(39).pn)
	}
	for _, tc := range []struct{ x, want uint64 }{{0, 0}, {1, 1}, {2, 1}, {77, 39}, {78, 39}, {79, 40}} {
		if i := h.search(tc.x); uint64(i) != tc.want {
			t.Errorf("search(%d) = %d, want %d", tc.x, i, tc.want)
		}
	}
	h.at(1).done = true
	h.popDone()
	if h.len() != 40 {
		t.Errorf("popDone dropped a record behind an outstanding one")
	}
	h.at(0).done = true
	h.popDone()
	if h.len() != 38 || h.at(0).pn != 4 || h.oldest().pn != 4 {
		t.Errorf("after popDone: len %d, first %d", h.len(), h.at(0).pn)
	}
	for i := range h.len() {
		h.at(i).done = true
	}
	if h.oldest() != nil {
		t.Errorf("oldest with every record done: %d", h.oldest().pn)
	}
}

// TestRecoveryLoss covers NAKs, a spurious loss and an ACK of a packet
// never sent; TestRACK covers loss detection by packet and time thresholds.
func TestRecoveryLoss(t *testing.T) {
	ms := time.Millisecond
	t.Run("nak", func(t *testing.T) {
		r, st := testRecovery(t, nil)
		pns := send(r, t0, 3, 1000)
		h := &recHandler{}
		r.onNak(&wire.NakFrame{Ranges: []wire.AckRange{{Smallest: pns[1], Largest: pns[1]}}}, t0.Add(ms), h)
		if !slices.Equal(h.lost, []uint64{pns[1]}) || r.inFlight != 2000 || st.c[CounterRetransmits].Load() != 1 {
			t.Errorf("lost %v in flight %d retransmits %d", h.lost, r.inFlight, st.c[CounterRetransmits].Load())
		}
	})
	t.Run("spurious loss", func(t *testing.T) {
		// A packet declared lost and acknowledged afterwards is not counted
		// twice: in flight stays right, no RTT sample comes from it.
		r, _ := testRecovery(t, nil)
		pns := send(r, t0, 5, 1000)
		h := &recHandler{}
		r.onNak(&wire.NakFrame{Ranges: []wire.AckRange{{Smallest: pns[0], Largest: pns[0]}}}, t0.Add(ms), h)
		if err := r.onAck(ack(wire.AckRange{Smallest: pns[0], Largest: pns[0]}), t0.Add(50*ms), h); err != nil {
			t.Fatal(err)
		}
		if r.inFlight != 4000 || len(h.acked) != 0 || r.rtt.HasSample() {
			t.Errorf("in flight %d acked %v rtt sample %v: the late ACK of a lost packet must change nothing", r.inFlight, h.acked, r.rtt.HasSample())
		}
	})
	t.Run("ack of unsent", func(t *testing.T) {
		r, _ := testRecovery(t, nil)
		send(r, t0, 2, 1000)
		var se *SessionError
		if err := r.onAck(ack(wire.AckRange{Smallest: 0, Largest: 7}), t0, &recHandler{}); !errors.As(err, &se) || se.Code != CodeProtocol {
			t.Errorf("ACK of packet 7 of 2 sent: %v, want a protocol violation", err)
		}
	})
}

// sendAt sends one packet of 1000 bytes at t0+at and returns its number.
func sendAt(r *recovery, at time.Duration) uint64 { return send(r, t0.Add(at), 1, 1000)[0] }

// TestRACK: time-based loss detection (RFC 8985) on a hand-advanced clock.
// Every case runs steps on a fresh recovery and checks which packets were
// declared lost, the RACK timer and the reordering state. RTT samples are
// 10 ms, so min RTT/4 is 2.5 ms.
func TestRACK(t *testing.T) {
	ms := time.Millisecond
	rng := func(lo, hi uint64) wire.AckRange { return wire.AckRange{Smallest: lo, Largest: hi} }
	type step struct {
		at       time.Duration   // since t0
		send     int             // packets to send (numbered from 0, skipping disabled)
		ack, nak []wire.AckRange // frames to process
		timeout  bool            // run onTimeout
	}
	for _, tc := range []struct {
		name        string
		reordering  bool // start with reordering already seen
		steps       []step
		wantLost    []uint64
		wantTimer   time.Duration // since t0; -1: none armed
		wantReoWnd  time.Duration
		wantSeen    bool
		wantSpurius uint64
	}{{
		name:  "reordered within the window is not lost",
		steps: []step{{at: 0, send: 1}, {at: ms, send: 1}, {at: 11 * ms, ack: []wire.AckRange{rng(1, 1)}}, {at: 12 * ms, ack: []wire.AckRange{rng(0, 1)}}},
		// packet 0 was outstanding with a timer at 0 + 10 + 2.5 ms; its
		// ACK after packet 1's is reordering.
		wantLost: nil, wantTimer: -1, wantReoWnd: 2500 * time.Microsecond, wantSeen: true,
	}, {
		name:     "the RACK timer declares a packet lost after RTT + reo_wnd",
		steps:    []step{{at: 0, send: 1}, {at: ms, send: 1}, {at: 11 * ms, ack: []wire.AckRange{rng(1, 1)}}, {at: 12500 * time.Microsecond, timeout: true}},
		wantLost: []uint64{0}, wantTimer: -1, wantReoWnd: 0, // an episode is open, no reordering seen
	}, {
		name:     "before the timer nothing is lost",
		steps:    []step{{at: 0, send: 1}, {at: ms, send: 1}, {at: 11 * ms, ack: []wire.AckRange{rng(1, 1)}}, {at: 12499 * time.Microsecond, timeout: true}},
		wantLost: nil, wantTimer: 12500 * time.Microsecond, wantReoWnd: 2500 * time.Microsecond,
	}, {
		name:  "packet threshold, then the episode closes the window",
		steps: []step{{at: 0, send: 1}, {at: ms, send: 1}, {at: 2 * ms, send: 1}, {at: 3 * ms, send: 1}, {at: 13 * ms, ack: []wire.AckRange{rng(3, 3)}}},
		// 0 is 3 below the largest: lost; then reo_wnd is 0, and 1 and 2
		// are older than packet 3's RTT.
		wantLost: []uint64{0, 1, 2}, wantTimer: -1, wantReoWnd: 0,
	}, {
		name:       "once reordering was seen the packet threshold is off",
		reordering: true,
		steps:      []step{{at: 0, send: 5}, {at: 10 * ms, ack: []wire.AckRange{rng(4, 4)}}},
		wantLost:   nil, wantTimer: 12500 * time.Microsecond, wantReoWnd: 2500 * time.Microsecond, wantSeen: true,
	}, {
		name:       "once reordering was seen a NAK waits for the window",
		reordering: true,
		steps: []step{{at: 0, send: 1}, {at: ms, send: 1}, {at: 11 * ms, ack: []wire.AckRange{rng(1, 1)}, nak: []wire.AckRange{rng(0, 0)}},
			{at: 12 * ms, timeout: true}},
		wantLost: nil, wantTimer: 12500 * time.Microsecond, wantReoWnd: 2500 * time.Microsecond, wantSeen: true,
	}, {
		name:       "and declares it lost when the window has passed",
		reordering: true,
		steps: []step{{at: 0, send: 1}, {at: ms, send: 1}, {at: 11 * ms, ack: []wire.AckRange{rng(1, 1)}, nak: []wire.AckRange{rng(0, 0)}},
			{at: 12500 * time.Microsecond, timeout: true}},
		wantLost: []uint64{0}, wantTimer: -1, wantReoWnd: 2500 * time.Microsecond, wantSeen: true,
	}, {
		name:     "without reordering a NAK declares the loss at once",
		steps:    []step{{at: 0, send: 2}, {at: 10 * ms, ack: []wire.AckRange{rng(1, 1)}, nak: []wire.AckRange{rng(0, 0)}}},
		wantLost: []uint64{0}, wantTimer: -1, wantReoWnd: 0,
	}, {
		name: "a spurious loss widens the window",
		steps: []step{{at: 0, send: 2}, {at: 10 * ms, ack: []wire.AckRange{rng(1, 1)}, nak: []wire.AckRange{rng(0, 0)}},
			{at: 11 * ms, ack: []wire.AckRange{rng(0, 1)}}},
		wantLost: []uint64{0}, wantTimer: -1, wantReoWnd: 5 * ms, wantSeen: true, wantSpurius: 1,
	}, {
		name: "at most once per round trip",
		steps: []step{{at: 0, send: 3}, {at: 10 * ms, ack: []wire.AckRange{rng(2, 2)}, nak: []wire.AckRange{rng(0, 1)}},
			{at: 11 * ms, ack: []wire.AckRange{rng(0, 0), rng(2, 2)}}, {at: 12 * ms, ack: []wire.AckRange{rng(0, 2)}}},
		wantLost: []uint64{0, 1}, wantTimer: -1, wantReoWnd: 5 * ms, wantSeen: true, wantSpurius: 2,
	}, {
		name: "a timeout's probe acknowledged late is not reordering",
		// PTO at 2 × srtt after the last send declares packet 1 lost
		// (suspected); its ACK after all says the RTT spiked.
		steps: []step{{at: 0, send: 2}, {at: 10 * ms, ack: []wire.AckRange{rng(0, 0)}}, {at: 20 * ms, timeout: true},
			{at: 21 * ms, ack: []wire.AckRange{rng(0, 1)}}},
		wantLost: []uint64{1}, wantTimer: -1, wantReoWnd: 0,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := testRecovery(t, nil)
			r.peerAckDelay = 0
			r.rack.reorderingSeen = tc.reordering
			h := &recHandler{}
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				if st.send > 0 {
					send(r, now, st.send, 1000)
				}
				if st.ack != nil {
					// ACK ranges go largest first.
					rs := slices.Clone(st.ack)
					slices.Reverse(rs)
					if err := r.onAck(ack(rs...), now, h); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
				}
				if st.nak != nil {
					r.onNak(&wire.NakFrame{Ranges: st.nak}, now, h)
				}
				if st.timeout {
					r.onTimeout(now, h)
				}
			}
			if !slices.Equal(h.lost, tc.wantLost) {
				t.Errorf("lost %v, want %v", h.lost, tc.wantLost)
			}
			gotTimer := time.Duration(-1)
			if !r.lossTime.IsZero() {
				gotTimer = r.lossTime.Sub(t0)
			}
			if gotTimer != tc.wantTimer {
				t.Errorf("RACK timer at %v, want %v", gotTimer, tc.wantTimer)
			}
			if got := r.reoWnd(); got != tc.wantReoWnd {
				t.Errorf("reo_wnd %v, want %v", got, tc.wantReoWnd)
			}
			if r.rack.reorderingSeen != tc.wantSeen || r.rack.spurious != tc.wantSpurius {
				t.Errorf("reordering seen %v, spurious %d; want %v, %d", r.rack.reorderingSeen, r.rack.spurious, tc.wantSeen, tc.wantSpurius)
			}
		})
	}
}

// TestRACKReoWndDecay: a widened reordering window returns to min RTT/4
// after 16 recoveries without a spurious loss, and is capped by the
// smoothed RTT.
func TestRACKReoWndDecay(t *testing.T) {
	ms := time.Millisecond
	r, _ := testRecovery(t, nil)
	r.peerAckDelay = 0
	h := &recHandler{}
	now := t0
	// Three spurious losses, one per round trip: the multiplier reaches 4
	// and the window the cap, srtt (10 ms), not 4 × 2.5 ms.
	for range 3 {
		pns := send(r, now, 2, 1000)
		now = now.Add(10 * ms)
		r.onAck(ack(wire.AckRange{Smallest: pns[1], Largest: pns[1]}), now, h)
		r.onNak(&wire.NakFrame{Ranges: []wire.AckRange{{Smallest: pns[0], Largest: pns[0]}}}, now, h)
		if !slices.Contains(h.lost, pns[0]) {
			now = r.lossTime // once reordering is seen, the NAK waits for the window
			r.onTimeout(now, h)
		}
		if !slices.Contains(h.lost, pns[0]) {
			t.Fatalf("packet %d not lost after its NAK and the RACK timer", pns[0])
		}
		r.onAck(ack(wire.AckRange{Smallest: pns[0], Largest: pns[1]}), now, h)
	}
	if r.rack.reoWndMult != 4 || r.reoWnd() != 10*ms {
		t.Fatalf("after 3 spurious losses: multiplier %d, reo_wnd %v; want 4, 10ms (srtt)", r.rack.reoWndMult, r.reoWnd())
	}
	// The last spurious loss's episode closes with an ACK of a later packet:
	// the first of the 16 recoveries.
	later := send(r, now, 1, 1000)
	now = now.Add(10 * ms)
	r.onAck(ack(wire.AckRange{Smallest: later[0], Largest: later[0]}), now, h)
	if r.rack.inRecovery || r.rack.reoWndPersist != rackReoWndPersist-1 {
		t.Fatalf("episode open %v, persist %d; want closed, %d", r.rack.inRecovery, r.rack.reoWndPersist, rackReoWndPersist-1)
	}
	// Recoveries without spurious losses: each one a loss declared by the
	// RACK timer and closed by an ACK of a later packet.
	for i := 1; i < rackReoWndPersist; i++ {
		if r.rack.reoWndMult == 1 {
			t.Fatalf("window narrowed after %d recoveries, want %d", i, rackReoWndPersist)
		}
		pns := send(r, now, 2, 1000)
		now = now.Add(10 * ms)
		r.onAck(ack(wire.AckRange{Smallest: pns[1], Largest: pns[1]}), now, h)
		now = r.lossTime
		r.onTimeout(now, h)
		if !slices.Contains(h.lost, pns[0]) {
			t.Fatalf("recovery %d: packet %d not lost by the RACK timer", i, pns[0])
		}
		next := send(r, now, 1, 1000)
		r.onAck(ack(wire.AckRange{Smallest: next[0], Largest: next[0]}, wire.AckRange{Smallest: pns[1], Largest: pns[1]}), now.Add(10*ms), h)
		now = now.Add(10 * ms)
	}
	if r.rack.reoWndMult != 1 || r.reoWnd() != 2500*time.Microsecond {
		t.Errorf("after %d recoveries: multiplier %d, reo_wnd %v; want 1, 2.5ms", rackReoWndPersist, r.rack.reoWndMult, r.reoWnd())
	}
}

// TestRecoveryPTO: the probe timeout backs off exponentially up to MaxRTO
// and resets on an acknowledgement; the third in a row collapses the window.
func TestRecoveryPTO(t *testing.T) {
	ms := time.Millisecond
	r, st := testRecovery(t, &Config{MinRTO: 5 * ms, MaxRTO: 200 * ms})
	pns := send(r, t0, 2, 1000)
	h := &recHandler{}
	if err := r.onAck(ack(wire.AckRange{Smallest: pns[0], Largest: pns[0]}), t0.Add(10*ms), h); err != nil {
		t.Fatal(err)
	}
	if !r.stalled().IsZero() {
		t.Errorf("stalled since %v before any timeout", r.stalled())
	}
	// srtt 10ms, rttvar 5ms: first PTO is the tail-loss probe 2×srtt+ack delay.
	want := []time.Duration{21 * ms, 62 * ms, 124 * ms, 200 * ms, 200 * ms}
	now := t0
	for i, w := range want {
		if got := r.pto(); got != w {
			t.Errorf("timeout %d: pto %v, want %v", i, got, w)
		}
		dl := r.nextDeadline()
		if r.onTimeout(dl.Add(-time.Microsecond), h) {
			t.Fatalf("timeout %d fired before its deadline", i)
		}
		if !r.onTimeout(dl, h) {
			t.Fatalf("timeout %d did not fire at %v", i, dl.Sub(now))
		}
		now = dl
		if r.probes != 2 {
			t.Errorf("timeout %d: %d probes allowed, want 2", i, r.probes)
		}
		send(r, now, 1, 1000) // the probe
	}
	if st.c[CounterRTOs].Load() != uint64(len(want)) {
		t.Errorf("RTO counter %d, want %d", st.c[CounterRTOs].Load(), len(want))
	}
	// Nothing acknowledged since the second packet left at t0 (the session
	// ends an idle timeout after that).
	if got := r.stalled(); !got.Equal(t0) {
		t.Errorf("after %d timeouts in a row: stalled since %v, want t0", len(want), got.Sub(t0))
	}
	if r.cc.Window() != minWindowPackets*DefaultMaxDatagramSize {
		t.Errorf("window %d after %d timeouts in a row, want the minimum", r.cc.Window(), len(want))
	}
	largest := r.nextPN - 1
	if err := r.onAck(ack(wire.AckRange{Smallest: largest, Largest: largest}), now.Add(10*ms), h); err != nil {
		t.Fatal(err)
	}
	if r.ptoCount != 0 || !r.stalled().IsZero() {
		t.Errorf("ptoCount %d, stalled since %v after an ACK, want 0 and none", r.ptoCount, r.stalled())
	}
}

// TestRecoverySkippedPacketNumbers: numbers are skipped now and then, and
// an ACK that covers one is an optimistic ACK (RFC 9000 §21.4).
func TestRecoverySkippedPacketNumbers(t *testing.T) {
	r, st := testRecovery(t, nil)
	r.nextSkip = 0
	r.skipPeriod = skipInitialPeriod
	r.chooseSkip()
	var sent []uint64
	for range 2000 {
		sent = append(sent, r.takePacketNumber())
	}
	if r.nskipped < 3 {
		t.Fatalf("%d numbers skipped in 2000 packets, want several", r.nskipped)
	}
	if !slices.IsSorted(sent) || slices.Contains(sent, r.skipped[0]) {
		t.Fatalf("skipped %d was sent", r.skipped[0])
	}
	// An honest ACK leaves the skipped numbers out.
	h := &recHandler{}
	s := r.skipped[0]
	honest := ack(wire.AckRange{Smallest: s + 1, Largest: s + 1}, wire.AckRange{Smallest: 0, Largest: s - 1})
	if err := r.onAck(honest, t0, h); err != nil {
		t.Fatalf("honest ACK around skipped %d: %v", s, err)
	}
	// One that covers the next skipped number, not yet acknowledged around,
	// is optimistic.
	var se *SessionError
	s2 := r.skipped[1]
	err := r.onAck(ack(wire.AckRange{Smallest: 0, Largest: s2 + 1}), t0, h)
	if !errors.As(err, &se) || se.Code != CodeProtocol {
		t.Fatalf("ACK covering skipped %d: %v, want a protocol violation", s2, err)
	}
	if st.c[CounterViolationOptimisticAck].Load() != 1 {
		t.Errorf("optimistic-ACK counter %d, want 1", st.c[CounterViolationOptimisticAck].Load())
	}
	if r.peekPacketNumber() != r.takePacketNumber() {
		t.Errorf("peek and take disagree")
	}
}

// TestRecoveryCwndGrowth: the window grows only while in use, and never
// beyond MaxCongestionWindow.
func TestRecoveryCwndGrowth(t *testing.T) {
	ms := time.Millisecond
	const mss = DefaultMaxDatagramSize
	t.Run("application limited", func(t *testing.T) {
		r, _ := testRecovery(t, nil)
		w := r.window()
		now := t0
		for range 100 { // one small packet at a time, acknowledged
			pns := send(r, now, 1, 100)
			now = now.Add(ms)
			if err := r.onAck(ack(wire.AckRange{Smallest: pns[0], Largest: pns[0]}), now, &recHandler{}); err != nil {
				t.Fatal(err)
			}
		}
		if r.window() != w {
			t.Errorf("window %d after 100 application-limited round trips, want it unchanged at %d", r.window(), w)
		}
	})
	t.Run("capped", func(t *testing.T) {
		r, st := testRecovery(t, &Config{MaxCongestionWindow: 40 * mss})
		now := t0
		for range 10 {
			n := r.window() / mss
			pns := send(r, now, n, mss)
			now = now.Add(ms)
			if err := r.onAck(ack(wire.AckRange{Smallest: pns[0], Largest: pns[len(pns)-1]}), now, &recHandler{}); err != nil {
				t.Fatal(err)
			}
		}
		if r.window() != 40*mss {
			t.Errorf("window %d, want the cap %d", r.window(), 40*mss)
		}
		if r.canSend(mss) && r.inFlight+mss > 40*mss {
			t.Errorf("canSend beyond the cap")
		}
		if st.c[CounterLimitCwnd].Load() != 1 {
			t.Errorf("cwnd cap counter %d, want 1 (counted once when reached)", st.c[CounterLimitCwnd].Load())
		}
	})
}

func TestReceivedTracker(t *testing.T) {
	ms := time.Millisecond
	type pkt struct {
		pn        uint64
		eliciting bool
	}
	for _, tc := range []struct {
		name     string
		pkts     []pkt
		ackNow   bool
		naks     []wire.AckRange
		deadline time.Duration // from t0; -1: none
	}{
		{"one eliciting: delayed", []pkt{{0, true}}, false, nil, ms},
		{"two eliciting: at once", []pkt{{0, true}, {1, true}}, true, nil, ms},
		{"non-eliciting: no deadline", []pkt{{0, false}}, false, nil, -1},
		{"gap: NAK at once", []pkt{{0, true}, {3, false}}, true, []wire.AckRange{{Smallest: 1, Largest: 2}}, ms},
		{"first packet not 0", []pkt{{2, false}}, true, []wire.AckRange{{Smallest: 0, Largest: 1}}, -1},
		{"fills a gap: at once", []pkt{{0, false}, {2, false}, {1, false}}, true, []wire.AckRange{{Smallest: 1, Largest: 1}}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := receivedTracker{maxAckDelay: ms}
			for _, p := range tc.pkts {
				if rt.isDuplicate(p.pn) {
					t.Fatalf("packet %d reported duplicate", p.pn)
				}
				rt.onPacket(p.pn, p.eliciting, 100, t0)
			}
			if rt.ackNow != tc.ackNow || !slices.Equal(rt.naks, tc.naks) {
				t.Errorf("ackNow %v naks %v, want %v %v", rt.ackNow, rt.naks, tc.ackNow, tc.naks)
			}
			var want time.Time
			if tc.deadline >= 0 {
				want = t0.Add(tc.deadline)
			}
			if rt.deadline() != want {
				t.Errorf("deadline %v, want %v", rt.deadline(), want)
			}
			for _, p := range tc.pkts {
				if !rt.isDuplicate(p.pn) {
					t.Errorf("packet %d not remembered", p.pn)
				}
			}
			var f wire.AckFrame
			rt.fillAck(&f, t0.Add(300*time.Microsecond))
			if f.AckDelay != 300 || f.Largest() != slices.MaxFunc(tc.pkts, func(a, b pkt) int { return int(a.pn) - int(b.pn) }).pn {
				t.Errorf("ACK delay %d µs largest %d", f.AckDelay, f.Largest())
			}
			rt.onAckSent()
			rt.onNakSent()
			if rt.wantsToSend() || !rt.deadline().IsZero() {
				t.Errorf("after sending: still wants to send")
			}
		})
	}
	t.Run("horizon", func(t *testing.T) {
		rt := receivedTracker{maxAckDelay: ms}
		for i := range uint64(maxRecvRanges + 10) {
			rt.onPacket(2*i, false, 100, t0) // every other: one range each
		}
		if len(rt.recvd.s) > maxRecvRanges || !rt.isDuplicate(0) || rt.isDuplicate(2*maxRecvRanges+21) {
			t.Errorf("%d ranges (max %d), horizon %d", len(rt.recvd.s), maxRecvRanges, rt.horizon)
		}
	})
	t.Run("delayed ack due", func(t *testing.T) {
		rt := receivedTracker{maxAckDelay: ms}
		rt.onPacket(0, true, 100, t0)
		rt.onTimer(t0.Add(ms - 1))
		if rt.ackNow {
			t.Fatal("ACK due before max_ack_delay")
		}
		rt.onTimer(t0.Add(ms))
		if !rt.ackNow {
			t.Fatal("ACK not due at max_ack_delay")
		}
	})
}

// TestPeerParamsChecked: every transport parameter is range-checked before
// conversion (#9 row 2: idle_timeout 2^62-1 ms wrapped to -1 ms).
func TestPeerParamsChecked(t *testing.T) {
	ok := wire.Params{InitialMaxData: 1 << 20, InitialMaxStreamData: 1 << 16, MaxStreams: 100, IdleTimeoutMillis: 30000, MaxDatagramSize: 1452, MaxAckDelayMicros: 1000}
	for _, tc := range []struct {
		name     string
		mod      func(*wire.Params)
		bad      string // parameter named in the error; "" if accepted
		wantIdle time.Duration
	}{
		{"defaults", func(*wire.Params) {}, "", 30 * time.Second},
		{"idle huge clamps to ours", func(p *wire.Params) { p.IdleTimeoutMillis = 1<<62 - 1 }, "", 30 * time.Second},
		{"idle smaller wins", func(p *wire.Params) { p.IdleTimeoutMillis = 2000 }, "", 2 * time.Second},
		{"idle zero: ours", func(p *wire.Params) { p.IdleTimeoutMillis = 0 }, "", 30 * time.Second},
		{"idle too small", func(p *wire.Params) { p.IdleTimeoutMillis = 1 }, "idle_timeout", 0},
		{"ack delay huge", func(p *wire.Params) { p.MaxAckDelayMicros = 1<<62 - 1 }, "max_ack_delay", 0},
		{"datagram too small", func(p *wire.Params) { p.MaxDatagramSize = 100 }, "max_datagram_size", 0},
		{"streams beyond 2^60", func(p *wire.Params) { p.MaxStreams = 1<<60 + 1 }, "max_streams", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := (&Config{}).populate()
			e := newEndpoint(nil, cfg, 1)
			s := newSession(e, true, wire.ConnID{}, simServer)
			p := ok
			tc.mod(&p)
			err := s.applyPeerParamsLocked(p)
			if tc.bad == "" {
				if err != nil || s.idleTimeout != tc.wantIdle {
					t.Errorf("err %v idle %v, want nil %v", err, s.idleTimeout, tc.wantIdle)
				}
				return
			}
			var se *SessionError
			if !errors.As(err, &se) || se.Code != CodeProtocol || !strings.Contains(se.Reason, tc.bad) {
				t.Errorf("err %v, want a protocol violation naming %s", err, tc.bad)
			}
			if s.stats.c[CounterViolationParams].Load() != 1 {
				t.Errorf("violation counter not counted")
			}
		})
	}
}

// countingCC is a CongestionControl written as an outside package would:
// it sees the RTT only through RTTStats' methods.
type countingCC struct {
	sent, acked, lost int
	lastSRTT          time.Duration
}

func (c *countingCC) OnPacketSent(time.Time, int) { c.sent++ }
func (c *countingCC) OnAck(_ time.Time, _ int, _ time.Time, rtt *RTTStats) {
	c.acked++
	c.lastSRTT = rtt.SmoothedRTT()
}
func (c *countingCC) OnLoss(time.Time, int, time.Time) { c.lost++ }
func (c *countingCC) OnPersistentCongestion()          {}
func (c *countingCC) Window() int                      { return 6000 }

// TestPluggedCongestionControl: Config.NewCongestionControl replaces the
// controller, which is then told about every packet.
func TestPluggedCongestionControl(t *testing.T) {
	cc := &countingCC{}
	var gotMSS int
	r, _ := testRecovery(t, &Config{NewCongestionControl: func(mss int) CongestionControl { gotMSS = mss; return cc }})
	pns := send(r, t0, 4, 1000)
	h := &recHandler{}
	if err := r.onAck(ack(wire.AckRange{Smallest: pns[3], Largest: pns[3]}), t0.Add(2*time.Millisecond), h); err != nil {
		t.Fatal(err)
	}
	// Packet 0 is lost by the packet threshold; that opens a loss episode,
	// which closes RACK's reordering window (none was seen), so 1 and 2,
	// sent with 3, are lost too.
	if gotMSS != DefaultMaxDatagramSize || cc.sent != 4 || cc.acked != 1 || cc.lost != 3 || cc.lastSRTT != 2*time.Millisecond {
		t.Errorf("mss %d, sent %d acked %d lost %d srtt %v; want %d, 4, 1, 3, 2ms",
			gotMSS, cc.sent, cc.acked, cc.lost, cc.lastSRTT, DefaultMaxDatagramSize)
	}
	if r.window() != 6000 {
		t.Errorf("window %d: want the controller's 6000", r.window())
	}
}

// TestPacingGain: the pacer runs at 2 × cwnd / srtt while the controller is
// in slow start and at 1.25 × afterwards (a congestion event), for CUBIC and
// NewReno; a controller of the application's is paced at 1.25 ×.
func TestPacingGain(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  *Config
	}{
		{"cubic", &Config{LossTolerance: -1}},
		{"newreno", &Config{Congestion: "newreno"}},
		// NewReno behind only the public interface: the pacer cannot tell.
		{"plugged", &Config{NewCongestionControl: func(mss int) CongestionControl { return publicOnly{newNewReno(mss)} }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := testRecovery(t, tc.cfg)
			r.refillPacer(t0)
			want := pacingGainSS
			if tc.name == "plugged" {
				want = pacingGainCA
			}
			if r.pacer.gain != want {
				t.Errorf("before any loss: gain %v, want %v", r.pacer.gain, want)
			}
			pns := send(r, t0, 10, 1000)
			h := &recHandler{}
			// Packets 4..10 acknowledged, 1..3 lost by the packet threshold.
			if err := r.onAck(ack(wire.AckRange{Smallest: pns[3], Largest: pns[9]}), t0.Add(10*time.Millisecond), h); err != nil {
				t.Fatal(err)
			}
			if len(h.lost) == 0 {
				t.Fatal("no loss declared")
			}
			r.refillPacer(t0.Add(11 * time.Millisecond))
			if r.pacer.gain != pacingGainCA {
				t.Errorf("after a congestion event: gain %v, want %v", r.pacer.gain, pacingGainCA)
			}
		})
	}
}

// publicOnly hides every method of a controller but CongestionControl's.
type publicOnly struct{ CongestionControl }
