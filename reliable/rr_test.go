package reliable

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// TestSimRequestResponseMix runs many concurrent request/response exchanges
// of random sizes (1 B to 64 KiB) on several streams, through loss, duplication
// and reordering: the pattern of Kafka and gRPC clients. Every reply must match
// its request, and the session must make progress (the virtual-time watchdog
// of simPair fails a test that stalls).
func TestSimRequestResponseMix(t *testing.T) {
	seeds := 20
	if testing.Short() || raceEnabled {
		seeds = 4
	}
	link := simnet.LinkConfig{Loss: 0.08, Duplicate: 0.02, Reorder: 0.1, ReorderDelay: 2 * time.Millisecond,
		Delay: time.Millisecond, Jitter: 300 * time.Microsecond}
	for seed := int64(100); seed < int64(100+seeds); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			t.Parallel() // each seed is its own bubble of virtual time
			t.Logf("seed %d", seed)
			synctest.Test(t, func(t *testing.T) {
				nw, l, s := simPair(t, seed, link, nil)
				defer nw.Close()
				// Server: each request is a 4-byte length then the body; the reply
				// is the body reversed.
				go func() {
					for {
						st, err := l.AcceptStream(context.Background())
						if err != nil {
							return
						}
						go func() {
							defer st.Close()
							var hdr [4]byte
							for {
								if _, err := io.ReadFull(st, hdr[:]); err != nil {
									return
								}
								n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
								body := make([]byte, n)
								if _, err := io.ReadFull(st, body); err != nil {
									return
								}
								for i, j := 0, len(body)-1; i < j; i, j = i+1, j-1 {
									body[i], body[j] = body[j], body[i]
								}
								if _, err := st.Write(append(hdr[:], body...)); err != nil {
									return
								}
							}
						}()
					}
				}()
				var wg sync.WaitGroup
				for k := 0; k < 6; k++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rng := rand.New(rand.NewPCG(uint64(seed), uint64(k)))
						st, err := s.OpenStream(context.Background())
						if err != nil {
							t.Error(err)
							return
						}
						defer st.Close()
						for i := 0; i < 60; i++ {
							n := 1 + rng.IntN(1<<uint(rng.IntN(17)))
							body := make([]byte, n)
							for j := range body {
								body[j] = byte(rng.Uint32())
							}
							req := append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, body...)
							if _, err := st.Write(req); err != nil {
								t.Errorf("stream %d request %d: write: %v", k, i, err)
								return
							}
							reply := make([]byte, 4+n)
							if _, err := io.ReadFull(st, reply); err != nil {
								t.Errorf("stream %d request %d (%d B): read: %v", k, i, n, err)
								return
							}
							for a, b := 0, len(body)-1; a < b; a, b = a+1, b-1 {
								body[a], body[b] = body[b], body[a]
							}
							if !bytes.Equal(reply[4:], body) {
								t.Errorf("stream %d request %d: reply differs", k, i)
								return
							}
							if rng.IntN(10) == 0 {
								time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond) // virtual think time
							}
						}
					}()
				}
				wg.Wait()
				s.CloseWithError(0, "")
				l.Close()
			})
		})
	}
}
