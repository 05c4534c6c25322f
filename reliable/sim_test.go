package reliable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

var (
	simServer = netip.MustParseAddrPort("10.0.0.1:9000")
	simClient = netip.MustParseAddrPort("10.0.0.2:5000")
)

// simPair builds a listener and a dialed session over a simulated network.
// It must run inside a synctest bubble.
func simPair(t *testing.T, seed int64, link simnet.LinkConfig, cfg *Config) (*simnet.Network, *Listener, *Session) {
	t.Helper()
	nw, err := simnet.New(simnet.Config{Seed: seed, Link: link, RecvQueue: 4096})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := nw.Listen(simServer)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := nw.Listen(simClient)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ListenPacket(sc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := DialPacket(ctx, cc, simServer, pin(l, cfg))
	if err != nil {
		t.Fatalf("seed %d: dial: %v", seed, err)
	}
	// A protocol bug that stops progress while keepalives go on would let
	// virtual time run forever: end such a test after 10 virtual minutes.
	wd := time.AfterFunc(10*time.Minute, func() {
		t.Errorf("seed %d: still running after 10 minutes of virtual time: no progress", seed)
		s.CloseWithError(CodeInternal, "test watchdog")
		l.Close()
		nw.Close()
	})
	t.Cleanup(func() {
		wd.Stop()
		// CloseWithError returns once CLOSE is sent; wait for the linger too,
		// so that no goroutine outlives the bubble.
		s.CloseWithError(0, "test end")
		<-s.Done()
		l.Close()
	})
	return nw, l, s
}

// exchange moves size bytes each way on each of n streams and checks them.
func exchange(t *testing.T, seed int64, l *Listener, s *Session, n, size int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	payload := func(i int, dir byte) []byte {
		b := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(seed)+uint64(i), uint64(dir)))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	_ = rng
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	// Server: each accepted stream reads the client's bytes and writes its own.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			st, err := l.AcceptStream(context.Background())
			if err != nil {
				errs <- fmt.Errorf("accept: %w", err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// The first 4 bytes name the client stream index.
				var idx [4]byte
				if _, err := io.ReadFull(st, idx[:]); err != nil {
					errs <- fmt.Errorf("server read index: %w", err)
					return
				}
				k := int(idx[0])
				go func() {
					st.Write(payload(k, 's'))
					st.CloseWrite()
				}()
				got, err := io.ReadAll(st)
				if err != nil {
					errs <- fmt.Errorf("server stream %d read: %w", k, err)
					return
				}
				if !bytes.Equal(got, payload(k, 'c')) {
					errs <- fmt.Errorf("server stream %d: got %d bytes, want %d (content differs)", k, len(got), size)
				}
			}()
		}
	}()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := s.OpenStream(context.Background())
			if err != nil {
				errs <- err
				return
			}
			go func() {
				st.Write([]byte{byte(i), 0, 0, 0})
				st.Write(payload(i, 'c'))
				st.CloseWrite()
			}()
			got, err := io.ReadAll(st)
			if err != nil {
				errs <- fmt.Errorf("client stream %d read: %w", i, err)
				return
			}
			if !bytes.Equal(got, payload(i, 's')) {
				errs <- fmt.Errorf("client stream %d: got %d bytes, want %d (content differs)", i, len(got), size)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("seed %d: %v", seed, err)
	}
}

// TestSimLossyTransfer moves 8 MiB each way on 4 concurrent streams through
// 20% loss, 5% duplication and heavy reordering, for 50 seeds.
func TestSimLossyTransfer(t *testing.T) {
	// 50 seeds run in the plain pass of scripts/test.sh; under the race
	// detector (10x slower) a subset keeps CI bounded.
	seeds := 50
	if testing.Short() || raceEnabled {
		seeds = 6
	}
	link := simnet.LinkConfig{Loss: 0.20, Duplicate: 0.05, Reorder: 0.25, ReorderDelay: 3 * time.Millisecond,
		Delay: 2 * time.Millisecond, Jitter: time.Millisecond}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel() // each seed is its own bubble of virtual time
			t.Logf("seed %d", seed)
			synctest.Test(t, func(t *testing.T) {
				nw, l, s := simPair(t, seed, link, nil)
				defer nw.Close()
				start := time.Now()
				exchange(t, seed, l, s, 4, 2<<20)
				st := s.Stats()
				t.Logf("virtual time %v, retransmits %d, naks sent/recv %d/%d, rtos %d, dups %d", time.Since(start), st.Counters[CounterRetransmits], st.Counters[CounterNaksSent], st.Counters[CounterNaksReceived], st.Counters[CounterRTOs], st.Counters[CounterDuplicates])
				s.CloseWithError(0, "done")
				l.Close()
			})
		})
	}
}

// TestSimBlackout survives a 2 s period of 100% loss in the middle of a transfer.
func TestSimBlackout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		link := simnet.LinkConfig{Loss: 0.02, Delay: time.Millisecond}
		nw, l, s := simPair(t, 7, link, nil)
		defer nw.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			exchange(t, 7, l, s, 2, 4<<20)
		}()
		time.Sleep(50 * time.Millisecond) // virtual time: let the transfer start
		blackout := link
		blackout.Loss = 1
		nw.SetDefaultLink(blackout)
		time.Sleep(2 * time.Second) // virtual: the blackout lasts 2 s
		nw.SetDefaultLink(link)
		<-done
		if err := s.Err(); err != nil {
			t.Fatalf("session died across the blackout: %v", err)
		}
		t.Logf("rtos %d retransmits %d", s.Stats().Counters[CounterRTOs], s.Stats().Counters[CounterRetransmits])
		s.CloseWithError(0, "done")
		l.Close()
	})
}

// TestSimPeerDisappears: a peer that vanishes is detected within IdleTimeout.
func TestSimPeerDisappears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{IdleTimeout: 3 * time.Second}
		nw, l, s := simPair(t, 3, simnet.LinkConfig{Delay: time.Millisecond}, cfg)
		defer nw.Close()
		st, err := s.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte("hello"))
		acc, err := l.AcceptStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		io.ReadFull(acc, buf)
		nw.Partition(simClient, netip.AddrPort{})
		start := time.Now()
		_, err = st.Read(buf)
		took := time.Since(start)
		var se *SessionError
		if !errors.As(err, &se) || se.Code != CodeIdleTimeout {
			t.Fatalf("read after peer vanished: %v, want idle timeout SessionError", err)
		}
		if took > 3*time.Second+100*time.Millisecond {
			t.Fatalf("detected after %v, configured 3s", took)
		}
		t.Logf("peer loss detected after %v: %v", took, err)
		l.Close()
	})
}

// TestSimSessionSendBufferBlocks: with the peer cut off nothing is
// acknowledged, so writes stop at SessionSendBuffer across streams (a write
// deadline interrupts the blocked writer), and resume when the link heals.
func TestSimSessionSendBufferBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{StreamSendBuffer: 64 << 10, SessionSendBuffer: 96 << 10, IdleTimeout: time.Minute}
		nw, l, s := simPair(t, 11, simnet.LinkConfig{Delay: time.Millisecond}, cfg)
		defer nw.Close()
		ctx := context.Background()
		a, _ := s.OpenStream(ctx)
		b, _ := s.OpenStream(ctx)
		nw.Partition(simClient, simServer)
		if n, err := a.Write(make([]byte, 64<<10)); err != nil || n != 64<<10 {
			t.Fatalf("stream a: wrote %d, %v", n, err)
		}
		b.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := b.Write(make([]byte, 64<<10))
		if !errors.Is(err, os.ErrDeadlineExceeded) || n != 32<<10 {
			t.Fatalf("stream b: wrote %d, %v; want 32 KiB then a deadline error", n, err)
		}
		nw.Heal(simClient, simServer)
		b.SetWriteDeadline(time.Time{})
		if _, err := b.Write(make([]byte, 64<<10)); err != nil {
			t.Fatalf("stream b after heal: %v", err)
		}
		s.CloseWithError(0, "done")
		l.Close()
	})
}
