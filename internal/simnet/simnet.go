// Package simnet is a deterministic simulated datagram network for protocol
// tests. Each endpoint (*Conn) implements the reliable.PacketConn seam, so a
// Raptor session runs over it unchanged; links between endpoints have loss,
// duplication, reordering, delay, jitter, a bandwidth limit with a bounded
// serialisation queue, an MTU, and partitions, all changeable at run time.
//
// simnet is built for testing/synctest: create the Network inside the
// bubble (synctest.Test) and time is virtual, so a 2 s outage takes no wall
// time and delivery instants are exact. Delivery uses one time.AfterFunc timer
// per Network armed for the earliest pending datagram in a heap (never a
// goroutine or timer per datagram); ReadBatch blocks on a channel, which
// synctest treats as durably blocking. Outside a bubble the same code runs in
// real time.
//
// All randomness comes from one math/rand/v2 PCG source seeded by
// Config.Seed, so the same seed and the same sequence of calls give the same
// drops, duplicates and delivery times. Per datagram the draws happen in a
// fixed order (loss, duplicate, jitter, reorder, then the duplicate's jitter
// and reorder).
//
// Order of effects for one datagram sent from a to b: partition check, MTU
// check, the link's serialisation queue (tail drop when QueueLen datagrams are
// waiting), loss, then propagation delay plus jitter plus optional reorder
// delay, then the receiver's bounded queue. Drops are counted by reason in
// Stats. Partitions, MTU and link settings apply when a datagram is sent;
// datagrams already in flight still arrive unless their endpoint is gone.
package simnet

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Defaults applied to zero fields.
const (
	DefaultMTU       = 65535 // LinkConfig.MTU when zero: no practical limit
	DefaultQueueLen  = 1000  // LinkConfig.QueueLen when zero and Bandwidth > 0
	DefaultRecvQueue = 1024  // Config.RecvQueue when zero, in datagrams
	firstPort        = 10000 // first port handed out for port 0
)

// LinkConfig describes one direction of a link. The zero value is a perfect
// link: no loss, no delay, unlimited bandwidth.
type LinkConfig struct {
	Loss         float64       // probability in [0,1] that a datagram is lost
	Duplicate    float64       // probability in [0,1] that a datagram is delivered twice
	Corrupt      float64       // probability in [0,1] that a datagram arrives with one bit flipped (a duplicate of it too)
	Reorder      float64       // probability in [0,1] that a datagram gets ReorderDelay extra delay
	ReorderDelay time.Duration // extra delay of a reordered datagram; zero means Delay, or 1ms if Delay is zero
	Delay        time.Duration // one-way propagation delay
	Jitter       time.Duration // extra delay drawn uniformly from [0, Jitter)
	Bandwidth    int64         // bytes per second of the serialisation queue; 0 means unlimited
	QueueLen     int           // datagrams the serialisation queue holds (tail drop); 0 means DefaultQueueLen
	MTU          int           // largest datagram in bytes, larger ones are dropped; 0 means DefaultMTU
}

// ConfigError names a configuration field and the value it rejected.
type ConfigError struct {
	Field string
	Value any
}

// Error names the field and the rejected value.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("simnet: invalid %s: %v", e.Field, e.Value)
}

func (l LinkConfig) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"Loss", l.Loss}, {"Duplicate", l.Duplicate}, {"Corrupt", l.Corrupt}, {"Reorder", l.Reorder}} {
		if !(p.v >= 0 && p.v <= 1) {
			return &ConfigError{"LinkConfig." + p.name, p.v}
		}
	}
	switch {
	case l.Delay < 0:
		return &ConfigError{"LinkConfig.Delay", l.Delay}
	case l.Jitter < 0:
		return &ConfigError{"LinkConfig.Jitter", l.Jitter}
	case l.ReorderDelay < 0:
		return &ConfigError{"LinkConfig.ReorderDelay", l.ReorderDelay}
	case l.Bandwidth < 0:
		return &ConfigError{"LinkConfig.Bandwidth", l.Bandwidth}
	case l.QueueLen < 0:
		return &ConfigError{"LinkConfig.QueueLen", l.QueueLen}
	case l.MTU < 0:
		return &ConfigError{"LinkConfig.MTU", l.MTU}
	}
	return nil
}

// Config configures a Network. The zero value is a valid perfect network
// with seed 0.
type Config struct {
	Seed      int64      // seeds the single random source
	Link      LinkConfig // default for every direction without an override (SetLink)
	RecvQueue int        // datagrams each endpoint queues before dropping; 0 means DefaultRecvQueue
	// Trace, if set, is called for every datagram event in order, with the
	// Network's lock held: it must not call the Network or its Conns.
	Trace func(Event)
}

// EventKind says what happened to a datagram.
type EventKind uint8

// Event kinds passed to Config.Trace.
const (
	EventSent       EventKind = iota // accepted by WriteBatch
	EventDelivered                   // queued at the receiver
	EventDropped                     // dropped; Event.Reason says why
	EventDuplicated                  // a second copy was scheduled
)

// DropReason says why a datagram was dropped.
type DropReason uint8

// Drop reasons.
const (
	DropNone       DropReason = iota
	DropLoss                  // random loss (LinkConfig.Loss)
	DropMTU                   // larger than LinkConfig.MTU
	DropQueue                 // serialisation queue full (LinkConfig.QueueLen)
	DropRecvQueue             // receiver's queue full (Config.RecvQueue)
	DropPartition             // sender and receiver partitioned
	DropNoEndpoint            // nobody listens on the destination (or it closed)
	numDropReasons
)

var dropNames = [...]string{"none", "loss", "mtu", "queue", "recv-queue", "partition", "no-endpoint"}

// String returns the reason's short name (for example "loss").
func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", r)
}

// Event is one datagram event reported to Config.Trace.
type Event struct {
	Kind   EventKind
	Reason DropReason // for EventDropped
	At     time.Time  // (virtual) time of the event
	From   netip.AddrPort
	To     netip.AddrPort
	Size   int
}

// Stats are cumulative counters of a Network.
type Stats struct {
	Sent       uint64                 // datagrams accepted by WriteBatch
	Delivered  uint64                 // datagrams queued at a receiver (duplicates included)
	Duplicated uint64                 // extra copies scheduled
	Corrupted  uint64                 // datagrams delivered with a bit flipped (LinkConfig.Corrupt)
	Dropped    [numDropReasons]uint64 // indexed by DropReason; see Drops
}

// Drops returns the number of datagrams dropped for reason r.
func (s Stats) Drops(r DropReason) uint64 {
	if int(r) < len(s.Dropped) {
		return s.Dropped[r]
	}
	return 0
}

// TotalDropped is the sum of drops over all reasons.
func (s Stats) TotalDropped() uint64 {
	var t uint64
	for _, d := range s.Dropped {
		t += d
	}
	return t
}

type dir struct{ from, to netip.AddrPort }

// link is the state of one direction: an optional override and the
// serialisation queue (departure times of datagrams not yet on the wire).
type link struct {
	override  *LinkConfig
	busyUntil time.Time
	deps      []time.Time // FIFO of departure times, bounded by QueueLen
}

type datagram struct {
	data []byte
	from netip.AddrPort
}

type event struct {
	at  time.Time
	seq uint64
	to  netip.AddrPort
	d   datagram
}

type eventHeap []event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*h = old[:len(old)-1]
	return e
}

// Network is a simulated network of endpoints. Its methods are safe for
// concurrent use.
type Network struct {
	mu        sync.Mutex
	rng       *rand.Rand
	def       LinkConfig
	recvQueue int
	trace     func(Event)

	links    map[dir]*link
	conns    map[netip.AddrPort]*Conn
	parts    map[dir]bool // normalised pairs; zero AddrPort = any
	nextPort map[netip.Addr]uint16
	events   eventHeap
	seq      uint64
	timer    *time.Timer
	timerAt  time.Time
	closed   bool
	stats    Stats
}

// New creates a Network. Call it inside the synctest bubble when testing
// with virtual time.
func New(cfg Config) (*Network, error) {
	if err := cfg.Link.validate(); err != nil {
		return nil, err
	}
	if cfg.RecvQueue < 0 {
		return nil, &ConfigError{"Config.RecvQueue", cfg.RecvQueue}
	}
	rq := cfg.RecvQueue
	if rq == 0 {
		rq = DefaultRecvQueue
	}
	s := uint64(cfg.Seed)
	return &Network{
		rng:       rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15)),
		def:       cfg.Link,
		recvQueue: rq,
		trace:     cfg.Trace,
		links:     map[dir]*link{},
		conns:     map[netip.AddrPort]*Conn{},
		parts:     map[dir]bool{},
		nextPort:  map[netip.Addr]uint16{},
	}, nil
}

// ErrAddrInUse is returned by Listen for an address already taken.
var ErrAddrInUse = errors.New("address already in use")

// Listen creates an endpoint at addr. Port 0 picks an unused port (from
// 10000 up). The address must be valid; any IP may be used.
func (n *Network) Listen(addr netip.AddrPort) (*Conn, error) {
	if !addr.Addr().IsValid() {
		return nil, fmt.Errorf("simnet: listen on invalid address %v", addr)
	}
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("simnet: listen on %v: %w", addr, net.ErrClosed)
	}
	if addr.Port() == 0 {
		ip := addr.Addr()
		p := n.nextPort[ip]
		if p < firstPort {
			p = firstPort
		}
		for tries := 0; ; tries++ {
			if tries == 65536 {
				return nil, fmt.Errorf("simnet: no free port on %v", ip)
			}
			if _, used := n.conns[netip.AddrPortFrom(ip, p)]; !used && p != 0 {
				break
			}
			p++
		}
		n.nextPort[ip] = p + 1
		addr = netip.AddrPortFrom(ip, p)
	}
	if _, used := n.conns[addr]; used {
		return nil, fmt.Errorf("simnet: listen on %v: %w", addr, ErrAddrInUse)
	}
	c := &Conn{
		net:   n,
		laddr: addr,
		rx:    make(chan datagram, n.recvQueue),
		done:  make(chan struct{}),
	}
	n.conns[addr] = c
	return c, nil
}

// SetDefaultLink replaces the settings of every direction without an
// override. It takes effect for datagrams sent from now on.
func (n *Network) SetDefaultLink(cfg LinkConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	n.mu.Lock()
	n.def = cfg
	n.mu.Unlock()
	return nil
}

// DefaultLink returns the settings of directions without an override, for
// changing one field: cfg := n.DefaultLink(); cfg.Loss = 1; n.SetDefaultLink(cfg).
func (n *Network) DefaultLink() LinkConfig {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.def
}

// SetLink overrides the settings of the direction from -> to (call it twice
// for both directions). It takes effect for datagrams sent from now on.
func (n *Network) SetLink(from, to netip.AddrPort, cfg LinkConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	n.mu.Lock()
	n.link(dir{from, to}).override = &cfg
	n.mu.Unlock()
	return nil
}

// ClearLink removes the override of from -> to; the default applies again.
func (n *Network) ClearLink(from, to netip.AddrPort) {
	n.mu.Lock()
	if l := n.links[dir{from, to}]; l != nil {
		l.override = nil
	}
	n.mu.Unlock()
}

// Partition drops every datagram sent between a and b, both ways, until
// Heal(a, b). A zero AddrPort for b means every peer: Partition(a,
// netip.AddrPort{}) isolates a.
func (n *Network) Partition(a, b netip.AddrPort) {
	n.mu.Lock()
	n.parts[pair(a, b)] = true
	n.mu.Unlock()
}

// Heal undoes Partition(a, b) (with the same arguments).
func (n *Network) Heal(a, b netip.AddrPort) {
	n.mu.Lock()
	delete(n.parts, pair(a, b))
	n.mu.Unlock()
}

func pair(a, b netip.AddrPort) dir {
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return dir{a, b}
}

func (n *Network) partitioned(a, b netip.AddrPort) bool {
	if len(n.parts) == 0 {
		return false
	}
	var anyPeer netip.AddrPort
	return n.parts[pair(a, b)] || n.parts[pair(a, anyPeer)] || n.parts[pair(b, anyPeer)]
}

// Stats returns a snapshot of the counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close closes every endpoint, discards datagrams in flight and stops the
// delivery timer. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	if n.timer != nil {
		n.timer.Stop()
	}
	n.events = nil
	conns := make([]*Conn, 0, len(n.conns))
	for _, c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

func (n *Network) link(d dir) *link {
	l := n.links[d]
	if l == nil {
		l = &link{}
		n.links[d] = l
	}
	return l
}

func (n *Network) emit(e Event) {
	if n.trace != nil {
		n.trace(e)
	}
}

func (n *Network) drop(now time.Time, r DropReason, from, to netip.AddrPort, size int) {
	n.stats.Dropped[r]++
	n.emit(Event{Kind: EventDropped, Reason: r, At: now, From: from, To: to, Size: size})
}

// send runs one datagram through the link model. Called with n.mu held.
func (n *Network) send(now time.Time, from, to netip.AddrPort, b []byte) {
	n.stats.Sent++
	n.emit(Event{Kind: EventSent, At: now, From: from, To: to, Size: len(b)})
	if n.partitioned(from, to) {
		n.drop(now, DropPartition, from, to, len(b))
		return
	}
	l := n.link(dir{from, to})
	cfg := n.def
	if l.override != nil {
		cfg = *l.override
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if len(b) > mtu {
		n.drop(now, DropMTU, from, to, len(b))
		return
	}
	depart := now
	if cfg.Bandwidth > 0 {
		// Forget datagrams already on the wire, then queue behind the rest.
		i := 0
		for i < len(l.deps) && !l.deps[i].After(now) {
			i++
		}
		l.deps = append(l.deps[:0], l.deps[i:]...)
		ql := cfg.QueueLen
		if ql == 0 {
			ql = DefaultQueueLen
		}
		if len(l.deps) >= ql {
			n.drop(now, DropQueue, from, to, len(b))
			return
		}
		start := now
		if l.busyUntil.After(start) {
			start = l.busyUntil
		}
		depart = start.Add(time.Duration(int64(len(b)) * int64(time.Second) / cfg.Bandwidth))
		l.busyUntil = depart
		l.deps = append(l.deps, depart)
	}
	if cfg.Loss > 0 && n.rng.Float64() < cfg.Loss {
		n.drop(now, DropLoss, from, to, len(b))
		return
	}
	dup := cfg.Duplicate > 0 && n.rng.Float64() < cfg.Duplicate
	data := append([]byte(nil), b...)
	if cfg.Corrupt > 0 && len(data) > 0 && n.rng.Float64() < cfg.Corrupt {
		bit := n.rng.IntN(8 * len(data))
		data[bit/8] ^= 1 << (bit % 8)
		n.stats.Corrupted++
	}
	n.schedule(depart.Add(n.delay(cfg)), to, datagram{data, from})
	if dup {
		n.stats.Duplicated++
		n.emit(Event{Kind: EventDuplicated, At: now, From: from, To: to, Size: len(b)})
		n.schedule(depart.Add(n.delay(cfg)), to, datagram{data, from})
	}
}

// delay draws the propagation delay of one copy.
func (n *Network) delay(cfg LinkConfig) time.Duration {
	d := cfg.Delay
	if cfg.Jitter > 0 {
		d += time.Duration(n.rng.Int64N(int64(cfg.Jitter)))
	}
	if cfg.Reorder > 0 && n.rng.Float64() < cfg.Reorder {
		rd := cfg.ReorderDelay
		if rd == 0 {
			rd = cfg.Delay
		}
		if rd == 0 {
			rd = time.Millisecond
		}
		d += rd
	}
	return d
}

func (n *Network) schedule(at time.Time, to netip.AddrPort, d datagram) {
	n.seq++
	heap.Push(&n.events, event{at: at, seq: n.seq, to: to, d: d})
	n.arm()
}

// arm points the single timer at the earliest event. Called with n.mu held.
func (n *Network) arm() {
	if len(n.events) == 0 || n.closed {
		return
	}
	next := n.events[0].at
	if n.timer != nil && !n.timerAt.IsZero() && !next.Before(n.timerAt) {
		return // already armed early enough
	}
	n.timerAt = next
	d := time.Until(next)
	if n.timer == nil {
		n.timer = time.AfterFunc(d, n.fire)
	} else {
		n.timer.Reset(d)
	}
}

// fire delivers every due datagram and re-arms the timer.
func (n *Network) fire() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	now := time.Now()
	n.timerAt = time.Time{}
	for len(n.events) > 0 && !n.events[0].at.After(now) {
		e := heap.Pop(&n.events).(event)
		n.deliver(e)
	}
	n.arm()
}

func (n *Network) deliver(e event) {
	size := len(e.d.data)
	c := n.conns[e.to]
	if c == nil {
		n.drop(e.at, DropNoEndpoint, e.d.from, e.to, size)
		return
	}
	select {
	case c.rx <- e.d:
		n.stats.Delivered++
		n.emit(Event{Kind: EventDelivered, At: e.at, From: e.d.from, To: e.to, Size: size})
	default:
		n.drop(e.at, DropRecvQueue, e.d.from, e.to, size)
	}
}

// Conn is an endpoint of a Network; it implements reliable.PacketConn.
type Conn struct {
	net       *Network
	laddr     netip.AddrPort
	rx        chan datagram
	done      chan struct{}
	closeOnce sync.Once

	dmu    sync.Mutex
	dl     chan struct{} // closed once the read deadline has passed; nil: none set yet
	dtimer *time.Timer
}

// SetReadDeadline makes a blocked or later ReadBatch return an error
// wrapping os.ErrDeadlineExceeded once t has passed (at once for a time in
// the past); the zero time clears the deadline. As a net.PacketConn's, it
// lets a reader interrupt a blocked ReadBatch.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.dtimer != nil && !c.dtimer.Stop() {
		<-c.dl // the timer fired: its callback closes dl
	}
	c.dtimer = nil
	if c.dl == nil || isClosed(c.dl) {
		c.dl = make(chan struct{})
	}
	if t.IsZero() {
		return nil
	}
	if d := time.Until(t); d > 0 {
		ch := c.dl
		c.dtimer = time.AfterFunc(d, func() { close(ch) })
		return nil
	}
	close(c.dl)
	return nil
}

// deadline is the channel ReadBatch waits on for the read deadline.
func (c *Conn) deadline() chan struct{} {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.dl == nil {
		c.dl = make(chan struct{})
	}
	return c.dl
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// LocalAddr is the endpoint's address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.laddr }

// ReadBatch blocks until a datagram is queued for this endpoint (or Close),
// then returns up to len(bufs) queued datagrams without blocking further.
// A datagram longer than its buffer is truncated. After Close it returns an
// error wrapping net.ErrClosed.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	if len(sizes) < len(bufs) || len(addrs) < len(bufs) {
		return 0, fmt.Errorf("simnet: read on %v: len(bufs)=%d but len(sizes)=%d len(addrs)=%d", c.laddr, len(bufs), len(sizes), len(addrs))
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	dl := c.deadline()
	select {
	case <-c.done:
		return 0, c.closedErr("read")
	case <-dl:
		return 0, fmt.Errorf("simnet: read on %v: %w", c.laddr, os.ErrDeadlineExceeded)
	default:
	}
	var d datagram
	select {
	case d = <-c.rx:
	case <-c.done:
		return 0, c.closedErr("read")
	case <-dl:
		return 0, fmt.Errorf("simnet: read on %v: %w", c.laddr, os.ErrDeadlineExceeded)
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n], d.data)
		addrs[n] = d.from
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case d = <-c.rx:
		default:
			return n, nil
		}
	}
}

// WriteBatch sends bufs[i] to addrs[i] through the simulated links. It
// copies the bytes, never blocks, and returns len(bufs): losses inside the
// network are counted in Stats, not reported. After Close it returns an
// error wrapping net.ErrClosed; an invalid destination address fails the
// datagram with an error naming its index.
func (c *Conn) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	if len(addrs) < len(bufs) {
		return 0, fmt.Errorf("simnet: write from %v: len(bufs)=%d but len(addrs)=%d", c.laddr, len(bufs), len(addrs))
	}
	select {
	case <-c.done:
		return 0, c.closedErr("write")
	default:
	}
	n := c.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return 0, c.closedErr("write")
	}
	now := time.Now()
	for i, b := range bufs {
		to := addrs[i]
		if !to.Addr().IsValid() || to.Port() == 0 {
			return i, fmt.Errorf("simnet: write from %v: invalid destination %v at batch index %d", c.laddr, to, i)
		}
		to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
		n.send(now, c.laddr, to, b)
	}
	return len(bufs), nil
}

// Close removes the endpoint from the network (datagrams to it are then
// dropped as DropNoEndpoint and its address can be reused) and unblocks
// ReadBatch. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		n := c.net
		n.mu.Lock()
		if n.conns[c.laddr] == c {
			delete(n.conns, c.laddr)
		}
		n.mu.Unlock()
	})
	return nil
}

func (c *Conn) closedErr(op string) error {
	return fmt.Errorf("simnet: %s on %v: %w", op, c.laddr, net.ErrClosed)
}
