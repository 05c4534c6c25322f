// Package impair injects seeded faults into any Raptor packet path: it wraps
// a PacketConn (the reliable.PacketConn method set, declared here so the
// package imports nothing of Raptor) and drops datagrams on send and/or
// receive, duplicates them on send, and optionally holds every sent datagram
// for a fixed delay — in the manner of Aeron's loss interceptors. It is what
// `raptor demo --loss PCT` and the loopback benchmarks put over real sockets;
// for virtual-time protocol tests use internal/simnet instead.
//
// All decisions come from one math/rand/v2 PCG source seeded by Config.Seed,
// drawn in call order (per sent datagram: loss, then duplicate; per received
// datagram: loss). Delayed datagrams are copied into buffers from a bounded
// free list and sent by one goroutine with one timer; because the delay is
// fixed the queue is a FIFO ring (due times never decrease), bounded by
// Config.QueueLen, with tail drops counted. Without delay, WriteBatch passes
// a filtered batch straight to the inner conn and allocates nothing.
package impair

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// PacketConn is the batched datagram interface being wrapped; it has the
// method set of reliable.PacketConn.
type PacketConn interface {
	ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (n int, err error)
	WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (n int, err error)
	LocalAddr() netip.AddrPort
	Close() error
}

// DefaultQueueLen is Config.QueueLen when zero.
const DefaultQueueLen = 4096

// maxDelayedBatch bounds one WriteBatch of the delay goroutine.
const maxDelayedBatch = 64

// Config says which faults to inject. The zero value injects none.
type Config struct {
	Seed      int64         // seeds the single random source
	SendLoss  float64       // probability in [0,1] that a sent datagram is dropped
	RecvLoss  float64       // probability in [0,1] that a received datagram is dropped
	Duplicate float64       // probability in [0,1] that a sent datagram is sent twice
	Delay     time.Duration // fixed delay added to every sent datagram; 0 sends at once
	QueueLen  int           // datagrams held for Delay before tail drop; 0 means DefaultQueueLen
}

// ConfigError names a Config field and the value Validate rejected.
type ConfigError struct {
	Field string
	Value any
}

// Error names the field and the rejected value.
func (e *ConfigError) Error() string { return fmt.Sprintf("impair: invalid %s: %v", e.Field, e.Value) }

// Validate reports the first out-of-range field. Wrap clamps such values
// instead of failing; call Validate to reject them (for example from a flag).
func (c Config) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"SendLoss", c.SendLoss}, {"RecvLoss", c.RecvLoss}, {"Duplicate", c.Duplicate}} {
		if !(p.v >= 0 && p.v <= 1) {
			return &ConfigError{p.name, p.v}
		}
	}
	if c.Delay < 0 {
		return &ConfigError{"Delay", c.Delay}
	}
	if c.QueueLen < 0 {
		return &ConfigError{"QueueLen", c.QueueLen}
	}
	return nil
}

func clamp(p float64) float64 {
	if !(p > 0) { // also NaN
		return 0
	}
	return min(p, 1)
}

// Stats are cumulative counters of a Conn.
type Stats struct {
	Sent       uint64 // datagrams handed to the inner conn (copies included)
	SendLost   uint64 // sent datagrams dropped by SendLoss
	Duplicated uint64 // extra copies made by Duplicate
	Delayed    uint64 // datagrams queued for Delay
	QueueDrops uint64 // datagrams dropped because the delay queue was full
	Discarded  uint64 // delayed datagrams still queued at Close
	SendErrors uint64 // delayed datagrams the inner conn failed to send
	Received   uint64 // datagrams returned by ReadBatch
	RecvLost   uint64 // received datagrams dropped by RecvLoss
}

type delayed struct {
	due  time.Time
	buf  []byte // from the free list
	addr netip.AddrPort
}

// Conn is a PacketConn with injected faults. It is safe for one reader and
// concurrent writers, like the conn it wraps.
type Conn struct {
	inner PacketConn
	cfg   Config

	rngMu sync.Mutex
	rng   *rand.Rand

	wmu    sync.Mutex // guards the reusable filtered batch
	wbufs  [][]byte
	waddrs []netip.AddrPort
	widx   []int

	qmu   sync.Mutex // guards the delay ring and free list
	ring  []delayed
	head  int
	count int
	free  [][]byte
	kick  chan struct{}
	done  chan struct{}
	ended chan struct{}

	closeOnce sync.Once
	closeErr  error

	sent, sendLost, duplicated, delayedN, queueDrops, discarded, sendErrs, received, recvLost atomic.Uint64
}

// Wrap returns pc with the faults of cfg injected; out-of-range
// probabilities are clamped to [0,1] and a negative Delay means none. With
// a Delay it starts one goroutine, which Close stops. The Conn owns pc:
// Close closes it. Create it inside a synctest bubble to run on virtual time.
func Wrap(pc PacketConn, cfg Config) *Conn {
	cfg.SendLoss, cfg.RecvLoss, cfg.Duplicate = clamp(cfg.SendLoss), clamp(cfg.RecvLoss), clamp(cfg.Duplicate)
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	s := uint64(cfg.Seed)
	c := &Conn{
		inner: pc,
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(s, s^0xa0761d6478bd642f)),
		done:  make(chan struct{}),
		ended: make(chan struct{}),
	}
	if cfg.Delay > 0 {
		c.ring = make([]delayed, cfg.QueueLen)
		c.kick = make(chan struct{}, 1)
		go c.run()
	} else {
		close(c.ended)
	}
	return c
}

// Inner returns the wrapped conn.
func (c *Conn) Inner() PacketConn { return c.inner }

// LocalAddr is the wrapped conn's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.inner.LocalAddr() }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	return Stats{
		Sent: c.sent.Load(), SendLost: c.sendLost.Load(), Duplicated: c.duplicated.Load(),
		Delayed: c.delayedN.Load(), QueueDrops: c.queueDrops.Load(), Discarded: c.discarded.Load(),
		SendErrors: c.sendErrs.Load(), Received: c.received.Load(), RecvLost: c.recvLost.Load(),
	}
}

// Close stops the delay goroutine (discarding what it still holds, counted
// in Stats.Discarded) and closes the wrapped conn. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		<-c.ended
		c.qmu.Lock()
		c.discarded.Add(uint64(c.count))
		c.count = 0
		c.qmu.Unlock()
		c.closeErr = c.inner.Close()
	})
	return c.closeErr
}

// ReadBatch reads from the wrapped conn and drops each datagram with
// probability RecvLoss, compacting the survivors to the front (their buffers
// are swapped into the earlier slots, not copied: a wrapped conn that lends
// its own memory, like udpio with UDP GRO, returns whole datagrams in
// buffers of their own size). If every datagram of a batch is dropped it
// reads again, so it returns n > 0 or an error.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	for {
		n, err := c.inner.ReadBatch(bufs, sizes, addrs)
		if n <= 0 || c.cfg.RecvLoss == 0 {
			if n > 0 {
				c.received.Add(uint64(n))
			}
			return n, err
		}
		kept := 0
		c.rngMu.Lock()
		for i := 0; i < n; i++ {
			if c.rng.Float64() < c.cfg.RecvLoss {
				continue
			}
			if kept != i {
				bufs[kept], bufs[i] = bufs[i], bufs[kept]
				sizes[kept] = sizes[i]
				addrs[kept] = addrs[i]
			}
			kept++
		}
		c.rngMu.Unlock()
		c.recvLost.Add(uint64(n - kept))
		c.received.Add(uint64(kept))
		if kept > 0 || err != nil {
			return kept, err
		}
	}
}

// WriteBatch applies SendLoss and Duplicate to each datagram, then either
// writes the survivors to the wrapped conn at once or queues copies of them
// for Delay. Dropped datagrams count as written: n reports how many of bufs
// were handled. If the wrapped conn fails, n is the index of the datagram it
// failed on and the error is the wrapped conn's.
func (c *Conn) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	if len(addrs) < len(bufs) {
		return 0, fmt.Errorf("impair: write from %v: len(bufs)=%d but len(addrs)=%d", c.LocalAddr(), len(bufs), len(addrs))
	}
	select {
	case <-c.done:
		// Let the closed inner conn produce its net.ErrClosed error.
		return c.inner.WriteBatch(bufs, addrs)
	default:
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbufs, c.waddrs, c.widx = c.wbufs[:0], c.waddrs[:0], c.widx[:0]
	c.rngMu.Lock()
	for i, b := range bufs {
		if c.cfg.SendLoss > 0 && c.rng.Float64() < c.cfg.SendLoss {
			c.sendLost.Add(1)
			continue
		}
		copies := 1
		if c.cfg.Duplicate > 0 && c.rng.Float64() < c.cfg.Duplicate {
			copies = 2
			c.duplicated.Add(1)
		}
		for ; copies > 0; copies-- {
			c.wbufs = append(c.wbufs, b)
			c.waddrs = append(c.waddrs, addrs[i])
			c.widx = append(c.widx, i)
		}
	}
	c.rngMu.Unlock()
	if c.cfg.Delay > 0 {
		c.enqueue(c.wbufs, c.waddrs)
		c.clearRefs()
		return len(bufs), nil
	}
	if len(c.wbufs) == 0 {
		return len(bufs), nil
	}
	m, err := c.inner.WriteBatch(c.wbufs, c.waddrs)
	c.sent.Add(uint64(m))
	if err != nil && m < len(c.widx) {
		idx := c.widx[m]
		c.clearRefs()
		return idx, err
	}
	c.clearRefs()
	return len(bufs), err
}

// clearRefs drops references to caller buffers held in the reusable batch.
func (c *Conn) clearRefs() {
	clear(c.wbufs)
}

// enqueue copies datagrams into the delay ring (tail drop when full).
func (c *Conn) enqueue(bufs [][]byte, addrs []netip.AddrPort) {
	if len(bufs) == 0 {
		return
	}
	due := time.Now().Add(c.cfg.Delay)
	c.qmu.Lock()
	wasEmpty := c.count == 0
	for i, b := range bufs {
		if c.count == len(c.ring) {
			c.queueDrops.Add(uint64(len(bufs) - i))
			break
		}
		var buf []byte
		if k := len(c.free); k > 0 && cap(c.free[k-1]) >= len(b) {
			buf = c.free[k-1][:len(b)]
			c.free = c.free[:k-1]
		} else {
			buf = make([]byte, len(b), max(len(b), 2048))
		}
		copy(buf, b)
		c.ring[(c.head+c.count)%len(c.ring)] = delayed{due: due, buf: buf, addr: addrs[i]}
		c.count++
		c.delayedN.Add(1)
	}
	c.qmu.Unlock()
	if wasEmpty {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// run is the delay goroutine: it sleeps until the head of the ring is due,
// then writes every due datagram in batches of up to maxDelayedBatch.
func (c *Conn) run() {
	defer close(c.ended)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	bufs := make([][]byte, 0, maxDelayedBatch)
	addrs := make([]netip.AddrPort, 0, maxDelayedBatch)
	for {
		c.qmu.Lock()
		now := time.Now()
		bufs, addrs = bufs[:0], addrs[:0]
		for c.count > 0 && len(bufs) < maxDelayedBatch && !c.ring[c.head].due.After(now) {
			d := &c.ring[c.head]
			bufs = append(bufs, d.buf)
			addrs = append(addrs, d.addr)
			*d = delayed{}
			c.head = (c.head + 1) % len(c.ring)
			c.count--
		}
		wait := time.Duration(-1)
		if len(bufs) == 0 && c.count > 0 {
			wait = c.ring[c.head].due.Sub(now)
		}
		c.qmu.Unlock()

		if len(bufs) > 0 {
			m, err := c.inner.WriteBatch(bufs, addrs)
			if m < 0 {
				m = 0
			}
			c.sent.Add(uint64(m))
			if err != nil {
				c.sendErrs.Add(uint64(len(bufs) - m))
			}
			c.release(bufs)
			continue
		}
		if wait >= 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-c.done:
				timer.Stop()
				return
			}
			continue
		}
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
	}
}

// release returns buffers to the bounded free list.
func (c *Conn) release(bufs [][]byte) {
	c.qmu.Lock()
	for i, b := range bufs {
		if len(c.free) < c.cfg.QueueLen {
			c.free = append(c.free, b[:0])
		}
		bufs[i] = nil
	}
	c.qmu.Unlock()
}
