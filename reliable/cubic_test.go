package reliable

import (
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// ccClock drives a controller by hand: a fluid model in which every round
// sends one window of full segments at t and acknowledges all of them one
// RTT later. Nothing reads the wall clock.
type ccClock struct {
	now time.Time
	rtt RTTStats
}

func newCCClock(rtt time.Duration) *ccClock {
	k := &ccClock{now: time.Unix(1_000_000, 0)}
	k.rtt.update(rtt, 0)
	return k
}

// round sends a window (at least one segment) and acknowledges it one RTT
// later; it returns the number of segments sent.
func (k *ccClock) round(cc CongestionControl, mss int) int {
	n := max(1, cc.Window()/mss)
	sentAt := k.now
	for range n {
		cc.OnPacketSent(sentAt, mss)
	}
	k.now = k.now.Add(k.rtt.SmoothedRTT())
	for range n {
		cc.OnAck(k.now, mss, sentAt, &k.rtt)
	}
	return n
}

const testMSS = 1000

func TestCubicSlowStart(t *testing.T) {
	c := newCubic(testMSS)
	k := newCCClock(10 * time.Millisecond)
	for i, want := range []int{32, 64, 128, 256} {
		if got := c.Window() / testMSS; got != want {
			t.Fatalf("round %d: window %d segments, want %d (doubling per round)", i, got, want)
		}
		k.round(c, testMSS)
	}
}

// lossAt puts c in congestion avoidance right after a loss at a window of w
// segments: w segments in flight, one of them lost.
func lossAt(c *cubic, k *ccClock, w int) time.Time {
	c.cwnd = w * testMSS
	sentAt := k.now
	for range w {
		c.OnPacketSent(sentAt, testMSS)
	}
	k.now = k.now.Add(k.rtt.SmoothedRTT())
	c.OnLoss(k.now, testMSS, sentAt)
	for range w - 1 {
		c.OnAck(k.now, testMSS, sentAt, &k.rtt)
	}
	return sentAt
}

func TestCubicReductionOnLoss(t *testing.T) {
	for _, tc := range []struct {
		name         string
		window       int // segments at the loss
		prevMax      float64
		wantSsthresh int
		wantWMax     float64
	}{
		{"first loss", 100, 0, 70, 100},
		{"above the last maximum", 120, 100, 84, 120},
		{"fast convergence below the last maximum", 80, 100, 56, 80 * (1 + cubicBeta) / 2},
		{"floor of two segments", 2, 0, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCubic(testMSS)
			c.wMax = tc.prevMax
			k := newCCClock(10 * time.Millisecond)
			lossAt(c, k, tc.window)
			if c.ssthresh != tc.wantSsthresh*testMSS {
				t.Errorf("ssthresh %d, want %d", c.ssthresh, tc.wantSsthresh*testMSS)
			}
			if math.Abs(c.wMax-tc.wantWMax) > 1e-9 {
				t.Errorf("W_max %.3f segments, want %.3f", c.wMax, tc.wantWMax)
			}
		})
	}
}

// TestCubicOneReductionPerEvent: losses of packets sent before the event
// started do not reduce again; one sent after it does.
func TestCubicOneReductionPerEvent(t *testing.T) {
	c := newCubic(testMSS)
	k := newCCClock(10 * time.Millisecond)
	c.cwnd = 100 * testMSS
	sentAt := k.now
	for range 100 {
		c.OnPacketSent(sentAt, testMSS)
	}
	k.now = k.now.Add(10 * time.Millisecond)
	for range 5 {
		c.OnLoss(k.now, testMSS, sentAt)
	}
	if c.ssthresh != 70*testMSS {
		t.Fatalf("after 5 losses of one flight: ssthresh %d, want %d (one reduction)", c.ssthresh, 70*testMSS)
	}
	later := k.now.Add(time.Millisecond)
	c.OnPacketSent(later, testMSS)
	k.now = later.Add(10 * time.Millisecond)
	w := c.Window() // PRR's window at the time
	c.OnLoss(k.now, testMSS, later)
	if want := int(float64(w) * cubicBeta); c.ssthresh != want {
		t.Fatalf("loss of a packet sent in recovery: ssthresh %d, want 0.7 × window %d = %d (a second reduction)", c.ssthresh, w, want)
	}
}

// TestCubicPRR checks proportional rate reduction: after a loss in a flight
// of 100 segments, the sender may send one segment at once, then about
// ssthresh/RecoverFS = 0.7 segment per delivered segment, and the window is
// ssthresh when recovery ends, without ever having dropped to a stall.
func TestCubicPRR(t *testing.T) {
	c := newCubic(testMSS)
	k := newCCClock(10 * time.Millisecond)
	c.cwnd = 100 * testMSS
	sentAt := k.now
	for range 100 {
		c.OnPacketSent(sentAt, testMSS)
	}
	k.now = k.now.Add(10 * time.Millisecond)
	c.OnLoss(k.now, testMSS, sentAt) // 99 in flight now
	if got, want := c.Window(), 100*testMSS; got != want {
		t.Fatalf("window right after the loss %d, want pipe + 1 segment = %d", got, want)
	}
	c.OnPacketSent(k.now, testMSS) // the retransmission
	sent := 1
	for i := 1; i <= 99; i++ {
		c.OnAck(k.now, testMSS, sentAt, &k.rtt)
		for c.flight+testMSS <= c.Window() {
			c.OnPacketSent(k.now, testMSS)
			sent++
		}
		if c.Window() < c.flight {
			t.Fatalf("ack %d: window %d below flight %d", i, c.Window(), c.flight)
		}
	}
	// 99 delivered: PRR allows ceil(99·70/100) = 70 segments in all.
	if sent != 70 {
		t.Fatalf("sent %d segments during recovery, want 70 (ssthresh/RecoverFS of delivered)", sent)
	}
	// An ACK of a packet sent after the loss ends recovery.
	k.now = k.now.Add(10 * time.Millisecond)
	c.OnAck(k.now, testMSS, k.now.Add(-5*time.Millisecond), &k.rtt)
	if c.inRecovery || c.Window() < 70*testMSS || c.Window() > 71*testMSS {
		t.Fatalf("after recovery: inRecovery=%v window %d, want ssthresh %d (+ at most one ACK of growth)", c.inRecovery, c.Window(), 70*testMSS)
	}
}

// TestCubicPRRSlowStartBound: when more is lost than the reduction, the
// flight falls below ssthresh and PRR-SSRB grows it back by at most one
// segment more than was delivered per ACK.
func TestCubicPRRSlowStartBound(t *testing.T) {
	c := newCubic(testMSS)
	k := newCCClock(10 * time.Millisecond)
	c.cwnd = 100 * testMSS
	sentAt := k.now
	for range 100 {
		c.OnPacketSent(sentAt, testMSS)
	}
	k.now = k.now.Add(10 * time.Millisecond)
	for range 50 { // half the flight lost
		c.OnLoss(k.now, testMSS, sentAt)
	}
	if c.flight != 50*testMSS {
		t.Fatalf("flight %d, want %d", c.flight, 50*testMSS)
	}
	c.OnPacketSent(k.now, testMSS) // the first retransmission (allowed at once)
	c.OnAck(k.now, testMSS, sentAt, &k.rtt)
	// pipe 50 < ssthresh 70: sndcnt = min(70-50, max(1-1, 1)+1) = 2.
	if got, want := c.Window()-c.flight, 2*testMSS; got != want {
		t.Fatalf("sendable after one delivered segment below ssthresh: %d, want %d", got, want)
	}
}

// TestCubicGrowthOverTime: after a loss at W_max = 100 segments on a 100 ms
// path the window follows the cubic curve: concave up to K = cbrt(30/0.4) ≈
// 4.2 s where it is back near W_max, convex (probing) beyond, and always at
// least the Reno-friendly estimate.
func TestCubicGrowthOverTime(t *testing.T) {
	c := newCubic(testMSS)
	k := newCCClock(100 * time.Millisecond)
	lossAt(c, k, 100)
	k.now = k.now.Add(100 * time.Millisecond)
	c.OnAck(k.now, testMSS, k.now.Add(-50*time.Millisecond), &k.rtt) // ends recovery
	start := k.now
	wantK := math.Cbrt(30 / cubicC)
	var at []float64 // window in segments at each second
	prev := c.Window()
	for k.now.Sub(start) < 7*time.Second {
		k.round(c, testMSS)
		if c.Window() < prev {
			t.Fatalf("window shrank without loss: %d -> %d", prev, c.Window())
		}
		prev = c.Window()
		if el := k.now.Sub(start); el >= time.Duration(len(at)+1)*time.Second {
			at = append(at, float64(c.Window())/testMSS)
		}
	}
	t.Logf("K = %.2f s; window per second: %.1f", wantK, at)
	if math.Abs(c.k-wantK) > 0.01 {
		t.Fatalf("K = %.3f, want %.3f", c.k, wantK)
	}
	// Concave before K: the gain of second 1->2 exceeds that of 3->4.
	if !(at[1]-at[0] > at[3]-at[2]) {
		t.Errorf("not concave before K: %v", at)
	}
	// Near W_max around K (one RTT ahead, rounds of 100 ms).
	if w := at[3]; w < 95 || w > 101 {
		t.Errorf("window at 4 s = %.1f segments, want close to W_max 100", w)
	}
	// Convex after K: growth speeds up again, and passes W_max.
	if !(at[6]-at[5] > at[4]-at[3]) || at[6] <= 100 {
		t.Errorf("not convex beyond K: %v", at)
	}
}

// TestCubicRenoFriendly: on a 1 ms path the cubic curve's seconds-long time
// scale would leave the window nearly flat; the Reno-friendly estimate makes
// it grow by about alpha = 0.53 segment per round trip instead.
func TestCubicRenoFriendly(t *testing.T) {
	c := newCubic(testMSS)
	k := newCCClock(time.Millisecond)
	lossAt(c, k, 100)
	k.now = k.now.Add(time.Millisecond)
	c.OnAck(k.now, testMSS, k.now.Add(-time.Microsecond), &k.rtt)
	w0 := float64(c.Window()) / testMSS
	for range 20 {
		k.round(c, testMSS)
	}
	per := (float64(c.Window())/testMSS - w0) / 20
	t.Logf("growth %.2f segments per round trip from %.1f", per, w0)
	if per < 0.4 || per > 0.7 {
		t.Fatalf("growth %.2f segments per RTT, want about alpha_cubic = %.2f", per, cubicAlpha)
	}
}

// TestCubicAppLimited: a sender that keeps far less than the window in flight
// does not grow it, and the cubic epoch moves on with time so that the window
// does not jump when the sender becomes busy again.
func TestCubicAppLimited(t *testing.T) {
	c := newCubic(testMSS)
	k := newCCClock(10 * time.Millisecond)
	lossAt(c, k, 100)
	k.now = k.now.Add(10 * time.Millisecond)
	c.OnAck(k.now, testMSS, k.now.Add(-time.Millisecond), &k.rtt)
	k.round(c, testMSS)           // one busy round starts the epoch
	trickle := func(rounds int) { // one segment per RTT
		for range rounds {
			sentAt := k.now
			c.OnPacketSent(sentAt, testMSS)
			k.now = k.now.Add(10 * time.Millisecond)
			c.OnAck(k.now, testMSS, sentAt, &k.rtt)
		}
	}
	trickle(2) // the busy round still counts for two round trips
	w, epoch := c.Window(), c.epoch
	trickle(100)
	if c.Window() != w {
		t.Fatalf("application-limited second grew the window %d -> %d", w, c.Window())
	}
	if shift := c.epoch.Sub(epoch); shift != time.Second {
		t.Fatalf("epoch moved %v during a 1 s application-limited stretch, want 1s", shift)
	}
	// Busy again: the window grows from where it was, not by a second's worth
	// of cubic curve.
	k.round(c, testMSS)
	if g := c.Window() - w; g <= 0 || g > 2*testMSS {
		t.Fatalf("first busy round after the stretch grew the window by %d bytes, want 0 < growth <= 2 segments", g)
	}
}

func TestCubicPersistentCongestion(t *testing.T) {
	c := newCubic(testMSS)
	c.cwnd = 100 * testMSS
	c.OnPersistentCongestion()
	if c.Window() != minWindowPackets*testMSS || c.ssthresh != 70*testMSS || c.wMax != 100 {
		t.Fatalf("window %d ssthresh %d W_max %.0f; want %d, %d, 100", c.Window(), c.ssthresh, c.wMax, minWindowPackets*testMSS, 70*testMSS)
	}
}

func TestCongestionConfig(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tolerance float64 // Config.LossTolerance
		ok        bool
		want      string
		wantTol   float64 // the CUBIC controller's tolerance
	}{
		{"", 0, true, "*reliable.cubic", DefaultLossTolerance},
		{"newreno", 0, true, "*reliable.newReno", 0},
		{"cubic", 0, true, "*reliable.cubic", DefaultLossTolerance},
		{"cubic", 0.05, true, "*reliable.cubic", 0.05},
		{"cubic", -1, true, "*reliable.cubic", 0},
		{"cubic", 0.3, false, "", 0},
		{"cubic", math.NaN(), false, "", 0},
		{"none", 0, true, "reliable.noCongestion", 0},
		{"bbr", 0, false, "", 0},
	} {
		c, err := (&Config{Congestion: tc.name, LossTolerance: tc.tolerance}).populate()
		if (err == nil) != tc.ok {
			t.Fatalf("Congestion %q LossTolerance %v: err %v, want ok=%v", tc.name, tc.tolerance, err, tc.ok)
		}
		if err != nil {
			continue
		}
		cc := c.newCongestionControl()
		if got := typeName(cc); got != tc.want {
			t.Errorf("Congestion %q: controller %s, want %s", tc.name, got, tc.want)
		}
		if cu, ok := cc.(*cubic); ok && cu.tolerance != tc.wantTol {
			t.Errorf("Congestion %q LossTolerance %v: tolerance %v, want %v", tc.name, tc.tolerance, cu.tolerance, tc.wantTol)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *newReno:
		return "*reliable.newReno"
	case *cubic:
		return "*reliable.cubic"
	case noCongestion:
		return "reliable.noCongestion"
	}
	return "?"
}

// TestSimCongestionControllers moves 2 MiB each way on 4 streams with each
// controller through the simulated network, over 1% random loss and over the
// harsh link of TestSimLossyTransfer (20% loss, duplication, reordering),
// checking every byte; the virtual time each took is logged for comparison
// (deterministic per seed).
func TestSimCongestionControllers(t *testing.T) {
	links := []struct {
		name  string
		link  simnet.LinkConfig
		seeds int64
	}{
		{"loss1pct", simnet.LinkConfig{Loss: 0.01, Delay: time.Millisecond}, 3},
		{"harsh", simnet.LinkConfig{Loss: 0.20, Duplicate: 0.05, Reorder: 0.25, ReorderDelay: 3 * time.Millisecond,
			Delay: 2 * time.Millisecond, Jitter: time.Millisecond}, 1},
	}
	for _, lk := range links {
		for _, cc := range []string{"newreno", "cubic"} {
			seeds := lk.seeds
			if raceEnabled {
				seeds = 1
			}
			for seed := int64(1); seed <= seeds; seed++ {
				t.Run(fmt.Sprintf("%s/%s/seed%d", lk.name, cc, seed), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						nw, l, s := simPair(t, seed, lk.link, &Config{Congestion: cc})
						defer nw.Close()
						start := time.Now()
						exchange(t, seed, l, s, 4, 2<<20)
						st := s.Stats()
						t.Logf("seed %d %s over %s: virtual time %v, retransmits %d, rtos %d, final cwnd %d",
							seed, cc, lk.name, time.Since(start), st.Get(CounterRetransmits), st.Get(CounterRTOs), st.CongestionWindow)
						s.CloseWithError(0, "done")
						l.Close()
					})
				})
			}
		}
	}
}

// TestCubicLossTolerance: with a tolerance, losses at a rate below it cost
// no reduction, above it they are congestion events again; without one,
// every loss of a new round trip is an event (RFC 9438 as written).
func TestCubicLossTolerance(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tolerance  float64
		lossEvery  int // one loss per this many packets
		wantEvents bool
	}{
		{"1% under a 2% tolerance", 0.02, 100, false},
		{"0.5% under a 2% tolerance", 0.02, 200, false},
		{"5% over a 2% tolerance", 0.02, 20, true},
		{"1% over a 0.5% tolerance", 0.005, 100, true},
		{"1% without tolerance", 0, 100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTolerantCubic(testMSS, tc.tolerance)
			k := newCCClock(10 * time.Millisecond)
			c.cwnd, c.ssthresh = 200*testMSS, 200*testMSS // congestion avoidance
			// 20 000 packets, 200 per 10 ms round trip; each ACK or loss is
			// reported one RTT after the send, as recovery would.
			for i := range 20000 {
				sentAt := k.now
				c.OnPacketSent(sentAt, testMSS)
				at := sentAt.Add(k.rtt.SmoothedRTT())
				if i%tc.lossEvery == tc.lossEvery-1 {
					c.OnLoss(at, testMSS, sentAt)
				} else {
					c.onAnyAck()
					c.OnAck(at, testMSS, sentAt, &k.rtt)
				}
				if i%200 == 199 {
					k.now = k.now.Add(k.rtt.SmoothedRTT())
				}
			}
			losses := uint64(20000 / tc.lossEvery)
			t.Logf("loss rate %.4f, %d congestion events, %d losses tolerated of %d, window %d segments", c.lossRate, c.events, c.tolerated, losses, c.Window()/testMSS)
			if got := c.events > 0; got != tc.wantEvents {
				t.Fatalf("%d congestion events, want any: %v", c.events, tc.wantEvents)
			}
			if !tc.wantEvents && (c.tolerated != losses || c.Window() < 200*testMSS) {
				t.Errorf("tolerated %d of %d losses, window %d segments; want all, and no reduction below 200", c.tolerated, losses, c.Window()/testMSS)
			}
		})
	}
}
