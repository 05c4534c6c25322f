// Package impair is the bench module's userspace network impairment: a
// bridge between two packet devices (TUN devices in two namespaces) that
// delays every packet by a fixed time plus optional jitter and drops packets
// with a seeded random source. It stands in for netem, which the kernel here
// lacks. One timer heap and one timer per direction; queues are bounded and
// count what they drop.
package impair

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Config shapes the impairment; the zero value forwards without delay.
type Config struct {
	// Delay is added to every packet, each direction.
	Delay time.Duration
	// Jitter adds a uniform random delay in [0, Jitter); packets may then
	// be reordered, as on a real path.
	Jitter time.Duration
	// Loss is the probability in [0, 1) that a packet is dropped.
	Loss float64
	// Seed seeds the random source (direction A→B uses Seed, B→A Seed+1).
	Seed uint64
	// Queue bounds the packets held per direction (default 4096).
	Queue int
	// MTU bounds the packet size read (default 65535).
	MTU int
}

// ConfigError names an impairment setting out of range.
type ConfigError struct {
	Field string
	Value any
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("impair: %s %v out of range", e.Field, e.Value)
}

// Validate checks the ranges of c.
func (c Config) Validate() error {
	switch {
	case c.Delay < 0 || c.Delay > time.Minute:
		return &ConfigError{"delay", c.Delay}
	case c.Jitter < 0 || c.Jitter > time.Minute:
		return &ConfigError{"jitter", c.Jitter}
	case c.Loss < 0 || c.Loss >= 1:
		return &ConfigError{"loss", c.Loss}
	case c.Queue < 0 || c.Queue > 1<<20:
		return &ConfigError{"queue", c.Queue}
	case c.MTU < 0 || c.MTU > 65535:
		return &ConfigError{"mtu", c.MTU}
	}
	return nil
}

// Device is a packet device: each Read returns one packet, each Write sends
// one. Close must unblock a pending Read.
type Device interface {
	io.ReadWriteCloser
}

// Stats counts what the bridge did, per direction.
type Stats struct {
	Forwarded [2]uint64 // A→B, B→A
	Lost      [2]uint64 // dropped by the random source
	Overflow  [2]uint64 // dropped because the queue was full
	WriteErrs [2]uint64 // dropped because the destination refused them (down)
}

// String is a one-line summary of both directions.
func (s Stats) String() string {
	return fmt.Sprintf("A→B forwarded %d lost %d overflow %d write errors %d; B→A forwarded %d lost %d overflow %d write errors %d",
		s.Forwarded[0], s.Lost[0], s.Overflow[0], s.WriteErrs[0], s.Forwarded[1], s.Lost[1], s.Overflow[1], s.WriteErrs[1])
}

// Bridge joins two devices.
type Bridge struct {
	a, b Device
	cfg  Config
	dirs [2]*direction
}

// NewBridge returns a bridge between a and b; Run starts it.
func NewBridge(a, b Device, cfg Config) *Bridge {
	if cfg.Queue == 0 {
		cfg.Queue = 4096
	}
	if cfg.MTU == 0 {
		cfg.MTU = 65535
	}
	br := &Bridge{a: a, b: b, cfg: cfg}
	br.dirs[0] = newDirection(a, b, cfg, cfg.Seed)
	br.dirs[1] = newDirection(b, a, cfg, cfg.Seed+1)
	return br
}

// Run forwards packets both ways until ctx ends or a device fails, then
// closes both devices and returns once every goroutine has ended.
func (br *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, d := range br.dirs {
		wg.Add(2)
		go func() { defer wg.Done(); errs[2*i] = d.readLoop(ctx); cancel() }()
		go func() { defer wg.Done(); errs[2*i+1] = d.writeLoop(ctx); cancel() }()
	}
	<-ctx.Done()
	br.a.Close()
	br.b.Close()
	wg.Wait()
	return errors.Join(errs...)
}

// Stats returns the counters so far.
func (br *Bridge) Stats() Stats {
	var s Stats
	for i, d := range br.dirs {
		s.Forwarded[i] = d.forwarded.Load()
		s.Lost[i] = d.lost.Load()
		s.Overflow[i] = d.overflow.Load()
		s.WriteErrs[i] = d.writeErrs.Load()
	}
	return s
}

type held struct {
	due time.Time
	seq uint64 // ties keep arrival order
	pkt []byte
}

type heldHeap []held

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(held)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type direction struct {
	src, dst Device
	cfg      Config
	rng      *rand.Rand
	mu       sync.Mutex
	q        heldHeap
	seq      uint64
	free     [][]byte
	wake     chan struct{}

	forwarded, lost, overflow, writeErrs atomic.Uint64
}

func newDirection(src, dst Device, cfg Config, seed uint64) *direction {
	return &direction{src: src, dst: dst, cfg: cfg, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		wake: make(chan struct{}, 1)}
}

func (d *direction) getBuf() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.free); n > 0 {
		b := d.free[n-1]
		d.free = d.free[:n-1]
		return b
	}
	return make([]byte, d.cfg.MTU)
}

func (d *direction) putBuf(b []byte) {
	d.mu.Lock()
	if len(d.free) < d.cfg.Queue {
		d.free = append(d.free, b[:cap(b)])
	}
	d.mu.Unlock()
}

func (d *direction) readLoop(ctx context.Context) error {
	for {
		buf := d.getBuf()
		n, err := d.src.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("impair: read: %w", err)
		}
		now := time.Now()
		if d.cfg.Loss > 0 && d.rng.Float64() < d.cfg.Loss {
			d.lost.Add(1)
			d.putBuf(buf)
			continue
		}
		due := now.Add(d.cfg.Delay)
		if d.cfg.Jitter > 0 {
			due = due.Add(time.Duration(d.rng.Int64N(int64(d.cfg.Jitter))))
		}
		d.mu.Lock()
		if len(d.q) >= d.cfg.Queue {
			d.mu.Unlock()
			d.overflow.Add(1)
			d.putBuf(buf)
			continue
		}
		d.seq++
		heap.Push(&d.q, held{due: due, seq: d.seq, pkt: buf[:n]})
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

func (d *direction) writeLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		var next held
		have := len(d.q) > 0
		if have {
			next = d.q[0]
		}
		now := time.Now()
		if have && !next.due.After(now) {
			heap.Pop(&d.q)
			d.mu.Unlock()
			_, err := d.dst.Write(next.pkt)
			d.putBuf(next.pkt)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, io.ErrClosedPipe) || errors.Is(err, os.ErrClosed) {
					return fmt.Errorf("impair: write: %w", err)
				}
				// A device that is down (EIO) or full drops the packet,
				// as a link would; count it and go on.
				d.writeErrs.Add(1)
				continue
			}
			d.forwarded.Add(1)
			continue
		}
		d.mu.Unlock()
		wait := time.Hour
		if have {
			wait = next.due.Sub(now)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case <-timer.C:
		}
	}
}
