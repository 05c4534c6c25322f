package reliable

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listenLoops starts a listener with n receive loops (SO_REUSEPORT) or skips
// when the platform has no such sockets.
func listenLoops(tb testing.TB, n int, cfg *Config) *Listener {
	tb.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	c := *cfg
	c.ReceiveLoops = n
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := Listen("127.0.0.1:0", &c)
	if err != nil {
		tb.Skipf("no listener with %d receive loops here: %v", n, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// dialMany dials n sessions, each from its own socket (its own 4-tuple).
func dialMany(tb testing.TB, addr string, n int, cfg *Config) []*Session {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out := make([]*Session, n)
	for i := range out {
		s, err := Dial(ctx, addr, cfg)
		if err != nil {
			tb.Fatalf("dial %d of %d: %v", i+1, n, err)
		}
		tb.Cleanup(func() { s.CloseWithError(0, "done") })
		out[i] = s
	}
	return out
}

// TestListenReceiveLoops echoes on 24 sessions through a listener with two
// receive loops: every echo must come back, the sessions must be spread over
// both loops (all on one has odds 2^-23), and no datagram may reach a loop
// that does not own its session (a session answers from the socket that
// received its Initial, and the kernel keeps each peer on one socket).
func TestListenReceiveLoops(t *testing.T) {
	l := listenLoops(t, 2, nil)
	if len(l.eps) != 2 || l.eps[0].pc.LocalAddr() != l.eps[1].pc.LocalAddr() {
		t.Fatalf("%d endpoints; want 2 on one address", len(l.eps))
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	const n = 24
	sessions := dialMany(t, l.Addr().String(), n, &Config{Logger: slog.New(slog.DiscardHandler)})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := s.OpenStream(ctx)
			if err != nil {
				errs <- err
				return
			}
			st.SetDeadline(time.Now().Add(20 * time.Second))
			msg := []byte(fmt.Sprintf("session %d: %s", i, make([]byte, 3000)))
			if _, err := st.Write(msg); err != nil {
				errs <- err
				return
			}
			st.CloseWrite()
			got, err := io.ReadAll(st)
			if err != nil || string(got) != string(msg) {
				errs <- fmt.Errorf("session %d: echo of %d bytes: got %d, %v", i, len(msg), len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	per := l.SessionsPerLoop()
	t.Logf("sessions per loop %v", per)
	if per[0]+per[1] != n || per[0] == 0 || per[1] == 0 {
		t.Fatalf("sessions per loop %v, want %d spread over both", per, n)
	}
	// Counters only grow, and the sessions are live: the per-loop sum lies
	// between the listener's totals read before and after it.
	before := l.Stats()
	var sum uint64
	for i, st := range l.StatsPerLoop() {
		got := st.Get(CounterPacketsReceived)
		if got == 0 {
			t.Errorf("loop %d with %d sessions received no packets", i, per[i])
		}
		sum += got
	}
	after := l.Stats()
	if lo, hi := before.Get(CounterPacketsReceived), after.Get(CounterPacketsReceived); sum < lo || sum > hi {
		t.Errorf("packets received per loop sum to %d, listener says %d before and %d after", sum, lo, hi)
	}
	for i, e := range l.eps {
		e.mu.Lock()
		for _, s := range e.sessions {
			if s.ep != e {
				t.Errorf("loop %d holds a session of another endpoint", i)
			}
		}
		e.mu.Unlock()
	}
	if st := l.Stats(); st.Get(CounterDropsUnknownSession) != 0 || st.Get(CounterDropsAddressMismatch) != 0 || st.Get(CounterSessionsOpened) != n {
		t.Fatalf("listener stats: %d unknown-session drops, %d address mismatches, %d sessions opened (want 0, 0, %d)",
			st.Get(CounterDropsUnknownSession), st.Get(CounterDropsAddressMismatch), st.Get(CounterSessionsOpened), n)
	}
}

// TestReceiveLoopsSessionLimit checks that MaxSessions bounds the listener as
// a whole, not each loop: with a limit of 4 and two loops, 4 of 8 dials
// succeed and the others are refused.
func TestReceiveLoopsSessionLimit(t *testing.T) {
	l := listenLoops(t, 2, &Config{MaxSessions: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ok, refused := 0, 0
	for i := 0; i < 8; i++ {
		s, err := Dial(ctx, l.Addr().String(), &Config{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			refused++
			continue
		}
		ok++
		t.Cleanup(func() { s.CloseWithError(0, "done") })
	}
	if ok != 4 || refused != 4 || l.SessionCount() != 4 {
		t.Fatalf("%d dials succeeded, %d refused, %d sessions; want 4, 4, 4 (per loop %v)", ok, refused, l.SessionCount(), l.SessionsPerLoop())
	}
	if st := l.Stats(); st.Get(CounterDropsSessionLimit) != 4 {
		t.Fatalf("DropsSessionLimit = %d, want 4", st.Get(CounterDropsSessionLimit))
	}
}

func TestReceiveLoopsConfig(t *testing.T) {
	for _, tc := range []struct {
		loops int
		ok    bool
	}{{0, true}, {1, true}, {4, true}, {-1, false}, {257, false}} {
		_, err := (&Config{ReceiveLoops: tc.loops}).populate()
		if (err == nil) != tc.ok {
			t.Errorf("ReceiveLoops %d: err %v, want ok=%v", tc.loops, err, tc.ok)
		}
	}
	if _, err := ListenPackets(nil, nil); err == nil {
		t.Error("ListenPackets with no PacketConn accepted")
	}
}

// BenchmarkReceiveLoops moves 1 KiB messages one way from 8 client sessions
// (each on its own socket, one stream each) into one listener with 1 or 2
// receive loops. The b.N messages are drawn from one shared budget, so a
// session on a less busy loop sends more and ns/op is the listener's
// aggregate rate. sessions/loop reports how the kernel's 4-tuple hash split
// the 8 sessions (the busiest loop's share).
func BenchmarkReceiveLoops(b *testing.B) {
	for _, loops := range []int{1, 2} {
		b.Run(fmt.Sprintf("loops=%d", loops), func(b *testing.B) {
			const sessions, size = 8, 1024
			cfg := &Config{Logger: slog.New(slog.DiscardHandler)}
			l := listenLoops(b, loops, cfg)
			var received, target atomic.Int64
			arrived := make(chan struct{}, 1)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() {
						buf := make([]byte, 64<<10)
						for {
							n, err := c.Read(buf)
							if received.Add(int64(n)) >= target.Load() {
								select {
								case arrived <- struct{}{}:
								default:
								}
							}
							if err != nil {
								return
							}
						}
					}()
				}
			}()
			ss := dialMany(b, l.Addr().String(), sessions, cfg)
			streams := make([]*Stream, sessions)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i, s := range ss {
				st, err := s.OpenStream(ctx)
				if err != nil {
					b.Fatal(err)
				}
				streams[i] = st
			}
			msg := make([]byte, size)
			run := func(total int64) {
				var budget atomic.Int64
				budget.Store(total)
				target.Store(received.Load() + total*size)
				var wg sync.WaitGroup
				for _, st := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for budget.Add(-1) >= 0 {
							if _, err := st.Write(msg); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				timeout := time.After(30 * time.Second)
				for received.Load() < target.Load() {
					select {
					case <-arrived:
					case <-timeout:
						b.Fatalf("received %d bytes, want %d", received.Load(), target.Load())
					}
				}
			}
			run(8000) // warm up windows and buffers
			b.SetBytes(size)
			b.ResetTimer()
			run(int64(b.N))
			b.StopTimer()
			per := l.SessionsPerLoop()
			b.ReportMetric(float64(maxInts(per)), "sessions/loop")
			var rtx uint64
			for _, s := range ss {
				st := s.Stats()
				rtx += st.Get(CounterRetransmits)
			}
			b.ReportMetric(float64(rtx)/float64(b.N), "rtx/op")
		})
	}
}

func maxInts(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// BenchmarkReceiveLoopsRR runs 8 concurrent 64-byte request/response loops,
// one per client session, against a listener with 1 or 2 receive loops that
// echoes; the b.N round trips come from one shared budget, so ns/op is the
// listener's aggregate rate (every request is one datagram the receive loop
// must dispatch and hand to a reader).
func BenchmarkReceiveLoopsRR(b *testing.B) {
	for _, loops := range []int{1, 2} {
		b.Run(fmt.Sprintf("loops=%d", loops), func(b *testing.B) {
			const sessions, size = 8, 64
			cfg := &Config{Logger: slog.New(slog.DiscardHandler)}
			l := listenLoops(b, loops, cfg)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() {
						io.Copy(c, c)
						c.Close()
					}()
				}
			}()
			ss := dialMany(b, l.Addr().String(), sessions, cfg)
			streams := make([]*Stream, sessions)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for i, s := range ss {
				st, err := s.OpenStream(ctx)
				if err != nil {
					b.Fatal(err)
				}
				st.SetDeadline(time.Now().Add(5 * time.Minute))
				streams[i] = st
			}
			run := func(total int64) {
				var budget atomic.Int64
				budget.Store(total)
				var wg sync.WaitGroup
				for _, st := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						msg, buf := make([]byte, size), make([]byte, size)
						for budget.Add(-1) >= 0 {
							if _, err := st.Write(msg); err != nil {
								b.Error(err)
								return
							}
							if _, err := io.ReadFull(st, buf); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			}
			run(2000) // warm up
			b.ResetTimer()
			run(int64(b.N))
			b.StopTimer()
			b.ReportMetric(float64(maxInts(l.SessionsPerLoop())), "sessions/loop")
		})
	}
}
