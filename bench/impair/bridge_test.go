package impair

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// chanDev is an in-memory packet device: writes to one end are reads of
// the other.
type chanDev struct {
	in, out chan []byte
	done    chan struct{}
	once    sync.Once
}

func pair() (*chanDev, *chanDev) {
	ab, ba := make(chan []byte, 1024), make(chan []byte, 1024)
	return &chanDev{in: ba, out: ab, done: make(chan struct{})}, &chanDev{in: ab, out: ba, done: make(chan struct{})}
}

func (c *chanDev) Read(b []byte) (int, error) {
	select {
	case p := <-c.in:
		return copy(b, p), nil
	case <-c.done:
		return 0, io.EOF
	}
}

func (c *chanDev) Write(b []byte) (int, error) {
	select {
	case c.out <- append([]byte(nil), b...):
		return len(b), nil
	case <-c.done:
		return 0, io.ErrClosedPipe
	}
}

func (c *chanDev) Close() error { c.once.Do(func() { close(c.done) }); return nil }

// Every packet is either delivered exactly Delay later, in order, or counted
// lost; the loss rate follows the seeded source. Virtual time (synctest).
func TestBridgeDelaysAndDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const seed, n = 7, 2000
		t.Logf("seed %d", seed)
		hostA, tunA := pair()
		tunB, hostB := pair()
		br := NewBridge(tunA, tunB, Config{Delay: time.Millisecond, Loss: 0.05, Seed: seed})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- br.Run(ctx) }()

		got := make(chan time.Duration, n)
		go func() {
			defer close(got)
			buf := make([]byte, 64)
			last := -1
			for {
				k, err := hostB.Read(buf)
				if err != nil {
					return
				}
				i := int(binary.BigEndian.Uint64(buf[:k]))
				if i <= last {
					t.Errorf("packet %d after %d: reordered", i, last)
				}
				last = i
				sent := time.Duration(binary.BigEndian.Uint64(buf[8:k]))
				got <- time.Duration(time.Now().UnixNano()) - sent
			}
		}()
		for i := 0; i < n; i++ {
			p := binary.BigEndian.AppendUint64(nil, uint64(i))
			p = binary.BigEndian.AppendUint64(p, uint64(time.Now().UnixNano()))
			hostA.Write(p)
			time.Sleep(100 * time.Microsecond) // virtual time: pacing of the sender
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		hostB.Close()
		s := br.Stats()
		if s.Forwarded[0]+s.Lost[0] != n || s.Overflow[0] != 0 {
			t.Fatalf("stats %v: forwarded+lost != %d", s, n)
		}
		if s.Lost[0] < n*2/100 || s.Lost[0] > n*8/100 {
			t.Fatalf("lost %d of %d at 5%%", s.Lost[0], n)
		}
		var k uint64
		for d := range got {
			k++
			if d != time.Millisecond {
				t.Fatalf("delivered after %v, want exactly 1ms", d)
			}
		}
		if k != s.Forwarded[0] {
			t.Fatalf("received %d, forwarded %d", k, s.Forwarded[0])
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Loss: 1}, {Loss: -0.1}, {Delay: -1}, {Queue: -1}, {MTU: 70000}} {
		if c.Validate() == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
	if err := (Config{Delay: time.Millisecond, Loss: 0.01}).Validate(); err != nil {
		t.Fatal(err)
	}
}
