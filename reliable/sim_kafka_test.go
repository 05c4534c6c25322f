package reliable

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// exchangeShape is a Kafka-like load on one session: a produce stream
// (large requests, small replies, up to depth requests in flight) and a fetch
// stream (small requests, large replies, one in flight), side by side.
type exchangeShape struct {
	produce, fetch int // request bytes of a produce, reply bytes of a fetch
	small          int // the small side of each exchange
	depth          int // produce requests in flight
	rounds         int // exchanges on each stream
}

// exchangeResult is what simExchange measured.
type exchangeResult struct {
	took  time.Duration // virtual time until both streams finished
	worst time.Duration // the longest exchange (request written to reply read)
	stats Stats         // the client's
	peer  Stats         // the server's session
}

// simExchange runs shape over link and reports the virtual time it took.
func simExchange(t *testing.T, seed int64, link simnet.LinkConfig, cfg *Config, shape exchangeShape) exchangeResult {
	t.Helper()
	var res exchangeResult
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, seed, link, cfg)
		defer nw.Close()
		// The server answers each request on the stream it came on: a
		// request is a 4-byte length and that many bytes; the reply is as
		// long as the request's first 4 payload bytes say.
		serve := func(st *Stream) error {
			hdr := make([]byte, 8)
			buf := make([]byte, 64<<10)
			reply := make([]byte, 0)
			for {
				if _, err := io.ReadFull(st, hdr); err != nil {
					if err == io.EOF {
						return nil
					}
					return err
				}
				n, want := int(binary.BigEndian.Uint32(hdr)), int(binary.BigEndian.Uint32(hdr[4:]))
				for n > 0 {
					k, err := st.Read(buf[:min(n, len(buf))])
					if err != nil {
						return fmt.Errorf("request body: %w", err)
					}
					n -= k
				}
				if cap(reply) < want+8 {
					reply = make([]byte, want+8)
				}
				r := reply[:want+8]
				binary.BigEndian.PutUint32(r, uint32(want))
				if _, err := st.Write(r); err != nil {
					return err
				}
			}
		}
		var worstMu sync.Mutex
		srvDone := make(chan error, 2)
		go func() {
			for range 2 {
				acc, err := l.AcceptStream(context.Background())
				if err != nil {
					srvDone <- err
					return
				}
				go func() { srvDone <- serve(acc) }()
			}
		}()
		// One client stream: rounds requests of req bytes asking for replies
		// of rep bytes, depth in flight.
		client := func(req, rep, depth int) error {
			st, err := s.OpenStream(context.Background())
			if err != nil {
				return err
			}
			msg := make([]byte, req+8)
			binary.BigEndian.PutUint32(msg, uint32(req))
			binary.BigEndian.PutUint32(msg[4:], uint32(rep))
			replies := make(chan error, 1)
			slots := make(chan time.Time, depth) // requests in flight, by when they were written
			go func() {
				hdr := make([]byte, 4)
				buf := make([]byte, 64<<10)
				for range shape.rounds {
					if _, err := io.ReadFull(st, hdr); err != nil {
						replies <- err
						return
					}
					n := int(binary.BigEndian.Uint32(hdr)) + 4
					for n > 0 {
						k, err := st.Read(buf[:min(n, len(buf))])
						if err != nil {
							replies <- err
							return
						}
						n -= k
					}
					d := time.Since(<-slots)
					worstMu.Lock()
					res.worst = max(res.worst, d)
					worstMu.Unlock()
				}
				replies <- nil
			}()
			for range shape.rounds {
				slots <- time.Now()
				if _, err := st.Write(msg); err != nil {
					return err
				}
			}
			if err := <-replies; err != nil {
				return err
			}
			return st.CloseWrite()
		}
		start := time.Now()
		cliDone := make(chan error, 2)
		go func() { cliDone <- client(shape.produce, shape.small, shape.depth) }()
		go func() { cliDone <- client(shape.small, shape.fetch, 1) }()
		for range 2 {
			if err := <-cliDone; err != nil {
				t.Fatalf("seed %d: client: %v", seed, err)
			}
		}
		res.took = time.Since(start)
		for range 2 {
			if err := <-srvDone; err != nil {
				t.Fatalf("seed %d: server: %v", seed, err)
			}
		}
		res.stats = s.Stats()
		res.peer = l.Stats()
		s.CloseWithError(0, "done")
		l.Close()
	})
	return res
}

// TestSimKafkaLikeLoss: a Kafka-like load (produce: 256 KiB requests with
// 64-byte replies, two in flight; fetch: 64-byte requests with 256 KiB
// replies, one in flight; on one session, as a franz-go client's produce and
// fetch connections share one) over a 2 ms, 200 MB/s path with 1% random
// loss each way, against the same path without loss, in virtual time. The
// default controller must keep at least floor of the loss-free rate, cut
// its window for none of the random losses, on either side, and stretch no
// exchange by more than 10 ms over the loss-free run's longest; NewReno (every
// loss a cut) is logged for contrast. Under loss the exchanges wait for
// retransmissions (a lost packet holds its request up for about a round
// trip, a lost last packet for a probe timeout): 0.91–0.94 of the loss-free
// rate seen, NewReno (29–32 window cuts) about 0.2.
func TestSimKafkaLikeLoss(t *testing.T) {
	shape := exchangeShape{produce: 256 << 10, fetch: 256 << 10, small: 64, depth: 2, rounds: 64}
	floor := 0.8
	if raceEnabled {
		shape.rounds = 16
		floor = 0.7
	}
	base := simnet.LinkConfig{Delay: time.Millisecond, Bandwidth: 200e6, QueueLen: 512}
	lossy := base
	lossy.Loss = 0.01
	for _, tc := range []struct {
		congestion string
		floor      float64 // least share of the loss-free rate under 1% loss
		noCuts     bool    // random loss must not cut the window
	}{
		{"", floor, true}, // the default
		{"newreno", 0, false},
	} {
		cfg := &Config{Congestion: tc.congestion}
		clean := simExchange(t, 1, base, cfg, shape)
		for seed := int64(1); seed <= 3; seed++ {
			r := simExchange(t, seed, lossy, cfg, shape)
			ratio := float64(clean.took) / float64(r.took)
			cuts := r.stats.Get(CounterCongestionEvents) + r.peer.Get(CounterCongestionEvents)
			t.Logf("%q seed %d: clean %v, 1%% loss %v = %.2f of the loss-free rate; longest exchange %v (clean %v); client retransmits %d of %d, RTOs %d; server retransmits %d of %d, RTOs %d; window cuts %d (clean %d); srtt %v",
				tc.congestion, seed, clean.took, r.took, ratio, r.worst, clean.worst,
				r.stats.Get(CounterRetransmits), r.stats.Get(CounterPacketsSent), r.stats.Get(CounterRTOs),
				r.peer.Get(CounterRetransmits), r.peer.Get(CounterPacketsSent), r.peer.Get(CounterRTOs),
				cuts, clean.stats.Get(CounterCongestionEvents)+clean.peer.Get(CounterCongestionEvents), r.stats.SmoothedRTT)
			if r.stats.Get(CounterRetransmits)+r.peer.Get(CounterRetransmits) == 0 {
				t.Errorf("%q seed %d: no retransmission over a 1%% lossy path: the loss did not apply", tc.congestion, seed)
			}
			if ratio < tc.floor {
				t.Errorf("%q seed %d: 1%% loss moved %.2f of the loss-free rate, want >= %.2f", tc.congestion, seed, ratio, tc.floor)
			}
			// No exchange stalls: a lost packet costs its exchange a round
			// trip or a probe timeout, a few milliseconds (NewReno's window
			// cuts stretch the longest to 70-80 ms).
			if tc.noCuts && r.worst > clean.worst+10*time.Millisecond {
				t.Errorf("%q seed %d: longest exchange %v under 1%% loss, clean %v: want at most 10 ms more", tc.congestion, seed, r.worst, clean.worst)
			}
			if tc.noCuts && cuts > 0 {
				t.Errorf("%q seed %d: %d window cuts for 1%% random loss, want 0 (below the %.0f%% loss tolerance)", tc.congestion, seed, cuts, 100*DefaultLossTolerance)
			}
		}
	}
}

// TestSimPacedRequests: pacing must not spread an application-limited
// request over the round trip. Requests of 32, 128 and 256 KiB, one at a
// time, each answered by 64 bytes, over a 100 MB/s path with a 10 ms round
// trip: each exchange must take at least floor of the ideal (the round trip
// plus the request's time on the link), in virtual time. The window grows to
// about twice a request (it grows only while half of it is in use), so a
// pacer at 1.25 × cwnd / srtt with a 16-datagram burst spent 1–2 ms of a
// 10 ms exchange holding back a request the window had room for (0.82, 0.89
// and 0.93 of the ideal); at 2 × in slow start with bursts of the initial
// window, 0.94–0.98.
func TestSimPacedRequests(t *testing.T) {
	const rounds = 100
	link := simnet.LinkConfig{Delay: 5 * time.Millisecond, Bandwidth: 100e6, QueueLen: 512}
	for _, size := range []int{32 << 10, 128 << 10, 256 << 10} {
		shape := exchangeShape{produce: size, fetch: 64, small: 64, depth: 1, rounds: rounds}
		r := simExchange(t, 1, link, nil, shape)
		// The fetch stream's tiny exchanges run alongside and take less.
		ideal := 2*link.Delay + time.Duration(float64(size)/float64(link.Bandwidth)*float64(time.Second))
		per := r.took / rounds
		share := float64(ideal) / float64(per)
		t.Logf("%d KiB requests: %v per exchange, ideal %v: %.2f; cwnd %d B, srtt %v", size>>10, per, ideal, share, r.stats.CongestionWindow, r.stats.SmoothedRTT)
		if share < 0.92 {
			t.Errorf("%d KiB requests over a 10 ms round trip: %v per exchange, %.2f of the ideal %v, want >= 0.92", size>>10, per, share, ideal)
		}
	}
}
