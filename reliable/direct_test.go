package reliable

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// TestSimDirectRead: chunks written one at a time to a reader already
// waiting for them are copied from the datagram straight into its buffer
// (stream_bytes_direct), whole when the buffer is large, the start of them
// when it is small (the rest through the ring), over a lossy, reordering
// link: the bytes arrive intact and in order.
func TestSimDirectRead(t *testing.T) {
	link := simnet.LinkConfig{Loss: 0.05, Reorder: 0.2, ReorderDelay: 2 * time.Millisecond, Delay: time.Millisecond}
	for _, tc := range []struct {
		name       string
		chunk, buf int
	}{
		{"buffer larger than the chunks", 3000, 64 << 10},
		{"buffer smaller than the chunks", 20000, 1000},
		{"buffer of one chunk", 700, 700},
	} {
		for seed := int64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", tc.name, seed), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					nw, l, s := simPair(t, seed, link, &Config{InsecurePlaintext: seed == 2})
					defer nw.Close()
					w, r := simStreams(t, l, s)
					const chunks = 60
					var want []byte
					for i := 0; i < chunks*tc.chunk; i++ {
						want = append(want, byte(i*7+i/251))
					}
					read := make(chan int) // bytes read so far: the writer waits for each chunk to be read
					werr := make(chan error, 1)
					go func() {
						for i := 0; i < chunks; i++ {
							if _, err := w.Write(want[i*tc.chunk : (i+1)*tc.chunk]); err != nil {
								werr <- err
								return
							}
							for n := range read {
								if n >= (i+1)*tc.chunk {
									break
								}
							}
						}
						werr <- w.CloseWrite()
					}()
					var got []byte
					buf := make([]byte, tc.buf)
					for {
						n, err := r.Read(buf)
						got = append(got, buf[:n]...)
						if errors.Is(err, io.EOF) {
							break
						}
						if err != nil {
							t.Fatalf("read after %d bytes: %v", len(got), err)
						}
						read <- len(got) // the writer waits for every chunk to be read before the next
					}
					close(read)
					if err := <-werr; err != nil {
						t.Fatal(err)
					}
					sameBytes(t, got, want)
					c := l.Stats().Counters
					direct, recvd := c[CounterStreamBytesDirect], c[CounterStreamBytesReceived]
					t.Logf("%d of %d bytes copied straight into the waiting Read's buffer; %d retransmits", direct, recvd, s.Stats().Counters[CounterRetransmits])
					if direct == 0 || direct > recvd {
						t.Fatalf("%d bytes direct of %d received: want some, at most all", direct, recvd)
					}
				})
			})
		}
	}
}

// TestSimDirectReadDeadline: a Read that lent its buffer and then timed out
// takes it back: data arriving after the timeout is not written into it but
// waits for the next Read.
func TestSimDirectReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, 1, simnet.LinkConfig{Delay: time.Millisecond}, nil)
		defer nw.Close()
		w, r := simStreams(t, l, s)
		old := bytes.Repeat([]byte{0xAA}, 4096)
		r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := r.Read(old); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read on an idle stream: %d, %v; want 0 and a timeout", n, err)
		}
		r.SetReadDeadline(time.Time{})
		msg := []byte("after the deadline")
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // virtual time: the data arrives (1 ms) with nobody reading
		synctest.Wait()
		if c := l.Stats().Counters; c[CounterPacketsReceived] == 0 {
			t.Fatal("nothing received")
		}
		if !bytes.Equal(old, bytes.Repeat([]byte{0xAA}, 4096)) {
			t.Fatalf("the timed-out Read's buffer was written after it returned: %q", bytes.TrimRight(old, "\xaa"))
		}
		got := make([]byte, 64)
		n, err := r.Read(got)
		if err != nil || !bytes.Equal(got[:n], msg) {
			t.Fatalf("next Read: %q, %v; want %q", got[:n], err, msg)
		}
	})
}

// TestSimDirectReadConcurrent: two goroutines read one stream at once (a
// net.Conn may be read concurrently): every byte written is read once, by
// one of them, whichever buffer the data went into.
func TestSimDirectReadConcurrent(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw, l, s := simPair(t, seed, simnet.LinkConfig{Loss: 0.02, Delay: time.Millisecond}, nil)
				defer nw.Close()
				w, r := simStreams(t, l, s)
				var want [256]int // how many bytes of each value were written
				go func() {
					var b []byte
					for i := 0; i < 3000; i++ {
						b = b[:0]
						for j := 0; j < 1+i%97; j++ {
							v := byte(i + j*31)
							b = append(b, v)
						}
						w.Write(b)
					}
					w.CloseWrite()
				}()
				for i := 0; i < 3000; i++ {
					for j := 0; j < 1+i%97; j++ {
						want[byte(i+j*31)]++
					}
				}
				var mu sync.Mutex
				var got [256]int
				var wg sync.WaitGroup
				for k := range 2 {
					wg.Go(func() {
						buf := make([]byte, 50+k*4000)
						for {
							n, err := r.Read(buf)
							mu.Lock()
							for _, v := range buf[:n] {
								got[v]++
							}
							mu.Unlock()
							if err != nil {
								if !errors.Is(err, io.EOF) {
									t.Errorf("reader %d: %v", k, err)
								}
								return
							}
						}
					})
				}
				wg.Wait()
				if got != want {
					for v := range want {
						if got[v] != want[v] {
							t.Fatalf("byte value %d read %d times, written %d times", v, got[v], want[v])
						}
					}
				}
				t.Logf("%d bytes direct", l.Stats().Counters[CounterStreamBytesDirect])
			})
		})
	}
}
