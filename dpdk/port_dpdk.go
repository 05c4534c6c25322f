//go:build dpdk && linux && cgo

package dpdk

/*
#cgo pkg-config: libdpdk
#cgo LDFLAGS: -lrte_net_ring -lrte_bus_vdev
#include "raptor_dpdk.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Built reports whether this binary has DPDK support (the dpdk build tag,
// cgo and Linux). It is true in this build.
const Built = true

// Port is one DPDK Ethernet port (one rx and one tx queue) carrying UDP
// datagrams for one local IPv4 address and port. It implements the
// reliable.PacketConn packet I/O seam: ReadBatch, WriteBatch, LocalAddr and
// Close. A poll loop on one locked OS thread receives bursts, answers ARP and
// hands datagrams (still in their mbufs) to ReadBatch through a bounded
// queue; WriteBatch encodes frames directly into mbufs and transmits a burst
// under a lock. Payloads are copied exactly once in each direction.
type Port struct {
	cfg       *resolved
	name      string // device string, for errors and logs
	port      C.uint16_t
	pool      *C.struct_rte_mempool
	mac       macAddr
	local     netip.AddrPort
	txOL      C.uint64_t // checksum offload flags, 0: software
	rxOL      bool
	wait      C.uint64_t // TxWait in timer cycles
	frameRoom int        // writable bytes in an mbuf
	epoch     time.Time
	errClosed error
	release   func() error // stops the device, frees the pool

	// poll loop (owned by the poll goroutine)
	rxMs     **C.struct_rte_mbuf
	rxD      []C.raptor_rxd
	rxDp     *C.raptor_rxd
	pollFree **C.struct_rte_mbuf
	pollFr   []*C.struct_rte_mbuf
	deliver  []rxItem

	// handoff to ReadBatch
	qmu    sync.Mutex
	q      []rxItem
	qHead  int
	qLen   int
	closed bool
	ready  chan struct{}
	rdFree **C.struct_rte_mbuf
	rdFr   []*C.struct_rte_mbuf

	// transmit side, guarded by txmu (also the ARP table)
	txmu        sync.Mutex
	txClosed    bool
	txMs        **C.struct_rte_mbuf
	txDp        *C.raptor_txd
	txD         []C.raptor_txd
	txIdx       []int             // batch index of each frame in txD
	firstUnsent int               // batch index of the first datagram a failed flush did not send
	txMACs      [MaxBurst]macAddr // next-hop MAC of each frame in txD
	arp         *arpTable
	ipID        uint16
	flushB      [][]byte
	flushA      []netip.AddrPort
	lastDev     C.struct_rte_eth_stats // snapshot at Close

	txActive atomic.Bool
	quit     chan struct{}
	done     chan struct{}
	stopping atomic.Bool

	closeOnce sync.Once
	closeErr  error

	ctr   [numCounters]atomic.Uint64
	drops [numDropReasons]atomic.Uint64
}

type rxItem struct {
	m    *C.struct_rte_mbuf
	data unsafe.Pointer // payload inside the mbuf
	n    int
	from netip.AddrPort
}

// counter indices
const (
	cRxDatagrams = iota
	cRxPayload
	cTxDatagrams
	cTxPayload
	cMbufFail
	cPollSleeps
	cARPReqSent
	cARPRepSent
	cARPReqRecv
	cARPRepRecv
	cARPResolved
	cARPTimeouts
	numCounters
)

// readChunk bounds the datagrams one ReadBatch returns (its free array).
const readChunk = 256

// arpTick is how often the poll loop retries pending ARP resolutions.
const arpTick = 10 * time.Millisecond

var (
	devMu  sync.Mutex
	devSeq int
)

func nextSeq() int {
	devMu.Lock()
	defer devMu.Unlock()
	devSeq++
	return devSeq
}

// Open initialises the EAL if needed (with cfg.EALArgs), probes or finds
// cfg.Device, configures it with one rx and one tx queue and starts its poll
// loop.
func Open(cfg Config) (*Port, error) {
	r, err := cfg.resolve(true)
	if err != nil {
		return nil, err
	}
	if err := InitEAL(cfg.EALArgs); err != nil {
		return nil, err
	}
	name := r.Device
	if i := strings.IndexByte(name, ','); i >= 0 {
		name = name[:i]
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	pid := C.raptor_port_by_name(cname)
	if pid < 0 {
		cdev := C.CString(r.Device)
		rc := C.raptor_probe(cdev)
		C.free(unsafe.Pointer(cdev))
		if rc < 0 {
			return nil, &DeviceError{Device: r.Device, Op: "rte_dev_probe", Code: int(rc)}
		}
		if pid = C.raptor_port_by_name(cname); pid < 0 {
			return nil, &DeviceError{Device: r.Device, Op: "find port " + name + " after probe", Code: int(pid)}
		}
	}
	p, err := newPort(r, r.Device, C.uint16_t(pid), nil)
	if err != nil {
		C.raptor_port_close(C.uint16_t(pid))
		return nil, err
	}
	return p, nil
}

// OpenRingPair opens two ports joined back to back by in-memory rings (the
// net_ring PMD): every frame one sends, the other receives. It needs no
// device or privilege and serves tests and in-process benchmarks. a.Device
// and b.Device are ignored; LocalAddr must differ. Without MAC overrides the
// ports get distinct locally administered MACs.
func OpenRingPair(a, b Config) (*Port, *Port, error) {
	ra, err := a.resolve(false)
	if err != nil {
		return nil, nil, err
	}
	rb, err := b.resolve(false)
	if err != nil {
		return nil, nil, err
	}
	if err := InitEAL(a.EALArgs); err != nil {
		return nil, nil, err
	}
	seq := nextSeq()
	names := [4]string{
		fmt.Sprintf("net_ring_raptor%da", seq), fmt.Sprintf("net_ring_raptor%db", seq),
		fmt.Sprintf("raptor%da", seq), fmt.Sprintf("raptor%db", seq),
	}
	var cn [4]*C.char
	for i, s := range names {
		cn[i] = C.CString(s)
		defer C.free(unsafe.Pointer(cn[i]))
	}
	size := 1
	for size < 2*max(ra.RxRing, rb.RxRing) {
		size <<= 1
	}
	var ringA, ringB *C.struct_rte_ring
	var p0, p1 C.int
	if rc := C.raptor_ring_pair(cn[0], cn[1], cn[2], cn[3], C.uint(size), &ringA, &ringB, &p0, &p1); rc < 0 {
		return nil, nil, &DeviceError{Device: names[0], Op: "rte_eth_from_rings", Code: int(rc)}
	}
	// Frames cross between the pools: each pool lives until both ports closed.
	var refs atomic.Int32
	refs.Store(2)
	var pools [2]*C.struct_rte_mempool
	shared := func() {
		if refs.Add(-1) == 0 {
			C.rte_mempool_free(pools[0])
			C.rte_mempool_free(pools[1])
			C.rte_ring_free(ringA)
			C.rte_ring_free(ringB)
		}
	}
	for i, r := range []*resolved{ra, rb} {
		if !r.hasMAC {
			r.mac = macAddr{0x02, 0x52, 0x41, byte(seq >> 8), byte(seq), byte(i)} // "RA"ptor, locally administered
			r.hasMAC = true
		}
	}
	pa, err := newPort(ra, names[0], C.uint16_t(p0), &pools[0])
	if err != nil {
		C.raptor_port_close(C.uint16_t(p0))
		C.raptor_port_close(C.uint16_t(p1))
		C.rte_ring_free(ringA)
		C.rte_ring_free(ringB)
		return nil, nil, err
	}
	pb, err := newPort(rb, names[1], C.uint16_t(p1), &pools[1])
	if err != nil {
		C.raptor_port_close(C.uint16_t(p1))
		pa.Close()
		C.rte_mempool_free(pools[0])
		C.rte_ring_free(ringA)
		C.rte_ring_free(ringB)
		return nil, nil, err
	}
	for _, p := range []*Port{pa, pb} {
		rel := p.release
		p.release = func() error {
			err := rel()
			shared()
			return err
		}
	}
	return pa, pb, nil
}

// newPort creates the pool, configures and starts port id and starts the
// poll loop. If keepPool is non-nil the pool is stored there and not freed by
// Close (the caller frees it).
func newPort(r *resolved, name string, id C.uint16_t, keepPool **C.struct_rte_mempool) (*Port, error) {
	room := max(2048, r.MTU+ethHdrLen+4)
	room = (room + 63) &^ 63
	poolName := C.CString(fmt.Sprintf("raptor_mp%d", nextSeq()))
	defer C.free(unsafe.Pointer(poolName))
	var perr C.int
	pool := C.raptor_pool_create(poolName, C.uint(r.MempoolSize), C.uint(r.MempoolCache),
		C.uint16_t(room+C.RTE_PKTMBUF_HEADROOM), &perr)
	if pool == nil {
		return nil, &DeviceError{Device: name, Op: fmt.Sprintf("rte_pktmbuf_pool_create(%d mbufs of %d bytes)", r.MempoolSize, room), Code: int(perr)}
	}
	var s C.raptor_setup
	s.nrx, s.ntx = C.uint16_t(r.RxRing), C.uint16_t(r.TxRing)
	offload := C.int(1)
	if r.NoChecksumOffload {
		offload = 0
	}
	if rc := C.raptor_port_setup(id, pool, &s, offload, C.uint16_t(r.MTU)); rc != 0 {
		C.rte_mempool_free(pool)
		ops := [...]string{"", "rte_eth_dev_info_get", "rte_eth_dev_configure", "rte_eth_dev_adjust_nb_rx_tx_desc",
			"rte_eth_rx_queue_setup", "rte_eth_tx_queue_setup", "rte_eth_dev_set_mtu", "rte_eth_dev_start", "rte_eth_macaddr_get"}
		return nil, &DeviceError{Device: name, Op: ops[min(int(s.stage), len(ops)-1)], Code: int(rc)}
	}
	p := &Port{
		cfg:       r,
		name:      name,
		port:      id,
		pool:      pool,
		local:     r.LocalAddr,
		txOL:      C.uint64_t(s.tx_ol),
		rxOL:      s.rx_ol != 0,
		wait:      C.uint64_t(uint64(C.raptor_timer_hz()) * uint64(r.TxWait) / uint64(time.Second)),
		frameRoom: room,
		epoch:     time.Now(),
		errClosed: fmt.Errorf("dpdk: port %q: %w", name, net.ErrClosed),
		q:         make([]rxItem, r.RxQueue),
		ready:     make(chan struct{}, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		deliver:   make([]rxItem, 0, r.Burst),
		txIdx:     make([]int, r.Burst),
		flushB:    make([][]byte, 0, r.ARPQueue),
		flushA:    make([]netip.AddrPort, 0, r.ARPQueue),
	}
	copy(p.mac[:], C.GoBytes(unsafe.Pointer(&s.mac[0]), 6))
	if r.hasMAC {
		p.mac = r.mac
	} else if p.mac == (macAddr{}) {
		seq := nextSeq()
		p.mac = macAddr{0x02, 0x52, 0x41, 0xff, byte(seq >> 8), byte(seq)}
	}
	p.rxMs, _ = cArray[*C.struct_rte_mbuf](r.Burst)
	p.rxDp, p.rxD = cArray[C.raptor_rxd](r.Burst)
	p.pollFree, p.pollFr = cArray[*C.struct_rte_mbuf](r.Burst)
	p.rdFree, p.rdFr = cArray[*C.struct_rte_mbuf](readChunk)
	p.txMs, _ = cArray[*C.struct_rte_mbuf](r.Burst)
	p.txDp, p.txD = cArray[C.raptor_txd](r.Burst)

	p.arp = newARPTable(r.ARPQueue, r.maxPayload, int64(r.ARPTimeout), int64(r.ARPRetry), r.ARPRetries)
	for ip, m := range r.static {
		p.arp.addStatic(ip, m)
	}
	p.arp.addStatic(r.LocalAddr.Addr(), p.mac)
	if keepPool != nil {
		*keepPool = pool
	}
	p.release = func() error {
		var err error
		if rc := C.raptor_port_close(p.port); rc != 0 {
			err = &DeviceError{Device: p.name, Op: "close", Code: int(rc)}
		}
		if keepPool == nil {
			C.rte_mempool_free(p.pool)
		}
		for _, a := range []**C.struct_rte_mbuf{p.rxMs, p.pollFree, p.rdFree, p.txMs} {
			cFree(a)
		}
		cFree(p.rxDp)
		cFree(p.txDp)
		return err
	}
	r.Logger.Info("dpdk port open", "device", name, "port", int(id), "mac", p.mac.String(),
		"local", r.LocalAddr.String(), "tx_csum_offload", s.tx_ol != 0, "rx_csum_offload", p.rxOL,
		"rx_desc", int(s.nrx), "tx_desc", int(s.ntx))
	go p.poll()
	return p, nil
}

// LocalAddr is the IPv4 address and UDP port the port receives on.
func (p *Port) LocalAddr() netip.AddrPort { return p.local }

// MAC is the Ethernet address the port sends from and answers ARP with.
func (p *Port) MAC() net.HardwareAddr { return net.HardwareAddr(append([]byte(nil), p.mac[:]...)) }

// ChecksumOffload reports whether the device computes the IPv4 and UDP
// checksums of sent frames (tx) and verifies those of received frames (rx);
// otherwise the Port does it in software.
func (p *Port) ChecksumOffload() (tx, rx bool) { return p.txOL != 0, p.rxOL }

// String names the port: device and local address.
func (p *Port) String() string { return fmt.Sprintf("dpdk(%s %v)", p.name, p.local) }

func (p *Port) now() int64 { return int64(time.Since(p.epoch)) }

// ReadBatch blocks until at least one datagram has arrived, then copies up to
// len(bufs) of them (at most 256) out of their mbufs: datagram i is
// bufs[i][:sizes[i]] from addrs[i], truncated to len(bufs[i]). After Close it
// returns an error wrapping net.ErrClosed.
func (p *Port) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	for {
		p.qmu.Lock()
		if p.closed {
			p.qmu.Unlock()
			return 0, p.errClosed
		}
		if p.qLen > 0 {
			n := min(len(bufs), p.qLen, readChunk)
			var bytes int
			for i := 0; i < n; i++ {
				it := &p.q[p.qHead]
				c := copy(bufs[i], unsafe.Slice((*byte)(it.data), it.n))
				sizes[i], addrs[i] = c, it.from
				bytes += c
				p.rdFr[i] = it.m
				*it = rxItem{}
				if p.qHead++; p.qHead == len(p.q) {
					p.qHead = 0
				}
			}
			p.qLen -= n
			C.raptor_free(p.rdFree, C.uint(n))
			p.qmu.Unlock()
			p.ctr[cRxDatagrams].Add(uint64(n))
			p.ctr[cRxPayload].Add(uint64(bytes))
			return n, nil
		}
		p.qmu.Unlock()
		select {
		case <-p.ready:
		case <-p.quit:
			return 0, p.errClosed
		}
	}
}

// WriteBatch sends bufs[i] to addrs[i] (IPv4 only) and returns how many were
// handed to the device or queued for ARP resolution. It stops at the first
// datagram it cannot send, returning its index with an *AddrError (IPv6, no
// route) or *SizeError; a *TxDropError means the device queue stayed full for
// TxWait or the mbuf pool ran dry (transient: retry bufs[n:]). After Close it
// returns an error wrapping net.ErrClosed.
func (p *Port) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	p.txmu.Lock()
	n, err := p.writeLocked(bufs, addrs)
	p.txmu.Unlock()
	if !p.txActive.Load() {
		p.txActive.Store(true) // a reply is likely: the poll loop spins again
	}
	return n, err
}

// writeLocked is WriteBatch with txmu held (also used to flush datagrams
// that waited for ARP).
func (p *Port) writeLocked(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	if p.txClosed {
		return 0, p.errClosed
	}
	now := p.now()
	h := udpHeader{srcMAC: p.mac, src: p.local, offload: p.txOL != 0}
	nf := 0 // frames collected in txIdx
	macs := &p.txMACs
	for i := 0; i < len(bufs); i++ {
		dst := addrs[i]
		if err := p.checkDst(dst, len(bufs[i])); err != nil {
			if _, ferr := p.flush(bufs, addrs, nf, &h, macs); ferr != nil {
				return p.firstUnsent, ferr
			}
			return i, err
		}
		d4 := netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
		hop, mac, ok := p.route(d4.Addr())
		if !ok {
			m, resolved, request := p.arp.lookup(hop, now)
			if request {
				p.sendARPLocked(arpOpRequest, broadcastMAC, macAddr{}, hop)
			}
			if !resolved {
				if !p.arp.enqueue(hop, d4, bufs[i]) {
					p.drops[dropARPQueueFull].Add(1)
				}
				continue
			}
			mac = m
		}
		macs[nf] = mac
		p.txIdx[nf] = i
		nf++
		if nf == p.cfg.Burst {
			if _, err := p.flush(bufs, addrs, nf, &h, macs); err != nil {
				return p.firstUnsent, err
			}
			nf = 0
		}
	}
	if _, err := p.flush(bufs, addrs, nf, &h, macs); err != nil {
		return p.firstUnsent, err
	}
	return len(bufs), nil
}

func (p *Port) checkDst(dst netip.AddrPort, size int) error {
	a := dst.Addr().Unmap()
	switch {
	case !a.IsValid() || dst.Port() == 0:
		return &AddrError{Addr: dst, Err: errors.New("invalid address or port 0")}
	case !a.Is4():
		return &AddrError{Addr: dst, Err: ErrIPv6}
	case size > p.cfg.maxPayload:
		return &SizeError{Size: size, Max: p.cfg.maxPayload}
	}
	return nil
}

// route returns the next hop for dst and, when it is static (own address,
// static gateway MAC), its MAC with ok true.
func (p *Port) route(dst netip.Addr) (hop netip.Addr, mac macAddr, ok bool) {
	c := p.cfg
	if dst == p.local.Addr() {
		return dst, p.mac, true
	}
	onLink := !c.Subnet.IsValid() || c.Subnet.Contains(dst)
	if c.hasGWMAC && (!onLink || !c.Subnet.IsValid()) {
		return dst, c.gwMAC, true
	}
	if !onLink && c.Gateway.IsValid() {
		return c.Gateway, mac, false
	}
	return dst, mac, false
}

// flush allocates nf mbufs, encodes the collected frames into them and
// transmits them in one burst. On a drop it records the batch index of the
// first unsent datagram in p.firstUnsent.
func (p *Port) flush(bufs [][]byte, addrs []netip.AddrPort, nf int, h *udpHeader, macs *[MaxBurst]macAddr) (int, error) {
	if nf == 0 {
		return 0, nil
	}
	if C.raptor_tx_alloc(p.pool, p.txMs, p.txDp, C.uint(nf)) < 0 {
		p.ctr[cMbufFail].Add(1)
		p.drops[dropNoMbuf].Add(uint64(nf))
		p.firstUnsent = p.txIdx[0]
		return 0, &TxDropError{Dropped: nf, Reason: "mbuf pool exhausted"}
	}
	var bytes int
	for k := 0; k < nf; k++ {
		i := p.txIdx[k]
		d := &p.txD[k]
		h.dstMAC = macs[k]
		h.dst = netip.AddrPortFrom(addrs[i].Addr().Unmap(), addrs[i].Port())
		h.id = p.ipID
		p.ipID++
		frame := unsafe.Slice((*byte)(unsafe.Pointer(d.data)), p.frameRoom)
		d.len = C.uint16_t(encodeUDP(frame, h, bufs[i]))
		d.udp = 1
		bytes += len(bufs[i])
	}
	sent := int(C.raptor_tx(p.port, p.txMs, p.txDp, C.uint16_t(nf), p.txOL, p.wait))
	p.ctr[cTxDatagrams].Add(uint64(sent))
	if sent < nf {
		for k := sent; k < nf; k++ {
			bytes -= len(bufs[p.txIdx[k]])
		}
		p.ctr[cTxPayload].Add(uint64(bytes))
		p.drops[dropTxQueueFull].Add(uint64(nf - sent))
		p.firstUnsent = p.txIdx[sent]
		return sent, &TxDropError{Dropped: nf - sent, Reason: fmt.Sprintf("device tx queue full for %v", p.cfg.TxWait)}
	}
	p.ctr[cTxPayload].Add(uint64(bytes))
	return sent, nil
}

// sendARPLocked sends one ARP frame (txmu held). Requests go to broadcast.
func (p *Port) sendARPLocked(op uint16, ethDst, tha macAddr, tpa netip.Addr) {
	if C.raptor_tx_alloc(p.pool, p.txMs, p.txDp, 1) < 0 {
		p.ctr[cMbufFail].Add(1)
		return
	}
	d := &p.txD[0]
	frame := unsafe.Slice((*byte)(unsafe.Pointer(d.data)), p.frameRoom)
	d.len = C.uint16_t(encodeARP(frame, op, p.mac, ethDst, p.mac, p.local.Addr(), tha, tpa))
	d.udp = 0
	if C.raptor_tx(p.port, p.txMs, p.txDp, 1, 0, p.wait) == 1 {
		if op == arpOpRequest {
			p.ctr[cARPReqSent].Add(1)
		} else {
			p.ctr[cARPRepSent].Add(1)
		}
	} else {
		p.drops[dropTxQueueFull].Add(1)
	}
}

// poll is the receive loop: one locked OS thread, rx bursts while traffic
// flows, then a spin of IdleSpin, then sleeps doubling from IdleSleepMin to
// IdleSleepMax, and up to IdleSleepDeep once idle for IdleDeepAfter. The sleep is a nanosleep of the locked thread with a 1 µs
// timer slack: Go timers round sub-millisecond sleeps up to 1 ms. A
// WriteBatch restarts the spin after the current sleep (a reply is likely).
func (p *Port) poll() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(p.done)
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0) // this thread only
	c := p.cfg
	lastRx := p.now()
	nextTick := lastRx + int64(arpTick)
	sleep := c.IdleSleepMin
	burst := C.uint16_t(c.Burst)
	for !p.stopping.Load() {
		n := int(C.raptor_rx(p.port, p.rxMs, p.rxDp, burst))
		if n > 0 {
			p.handleBurst(n)
			lastRx = p.now()
			sleep = c.IdleSleepMin
			if lastRx >= nextTick {
				p.tickARP(lastRx)
				nextTick = lastRx + int64(arpTick)
			}
			continue
		}
		now := p.now()
		if now >= nextTick {
			p.tickARP(now)
			nextTick = now + int64(arpTick)
		}
		if p.txActive.Load() {
			p.txActive.Store(false)
			lastRx = now
			sleep = c.IdleSleepMin
		}
		if c.IdleSleepMax < 0 || now-lastRx < int64(c.IdleSpin) {
			continue
		}
		p.ctr[cPollSleeps].Add(1)
		ts := unix.NsecToTimespec(int64(sleep))
		_ = unix.Nanosleep(&ts, nil)
		if now-lastRx >= int64(c.IdleDeepAfter) {
			sleep = min(2*sleep, max(c.IdleSleepMax, c.IdleSleepDeep))
		} else {
			sleep = min(2*sleep, c.IdleSleepMax)
		}
	}
}

func (p *Port) tickARP(now int64) {
	p.txmu.Lock()
	defer p.txmu.Unlock()
	if p.txClosed {
		return
	}
	dropped, timeouts := p.arp.tick(now, func(ip netip.Addr) {
		p.sendARPLocked(arpOpRequest, broadcastMAC, macAddr{}, ip)
	})
	if dropped > 0 || timeouts > 0 {
		p.drops[dropARPUnresolved].Add(uint64(dropped))
		p.ctr[cARPTimeouts].Add(uint64(timeouts))
	}
}

// handleBurst parses n received frames: datagrams for us go to the handoff
// queue (mbuf and all), ARP is answered, the rest is counted and freed.
func (p *Port) handleBurst(n int) {
	nfree := 0
	deliver := p.deliver[:0]
	var f frameInfo
	for i := 0; i < n; i++ {
		d := &p.rxD[i]
		if d.segs != 1 {
			p.drops[dropMultiSegment].Add(1)
			p.pollFr[nfree] = d.m
			nfree++
			continue
		}
		b := unsafe.Slice((*byte)(unsafe.Pointer(d.data)), int(d.len))
		ipc, udpc := csumVerify, csumVerify
		if p.rxOL {
			ipc, udpc = rxFlags(uint64(d.ol))
		}
		r := parseFrame(b, &f, ipc, udpc)
		if r == dropNone {
			switch f.kind {
			case kindUDP:
				if f.dstMAC != p.mac || f.dst != p.local {
					r = dropNotForUs
				} else {
					deliver = append(deliver, rxItem{m: d.m, data: unsafe.Add(unsafe.Pointer(d.data), f.payloadOff), n: f.payloadLen, from: f.src})
					continue
				}
			case kindARP:
				if f.dstMAC != p.mac && f.dstMAC != broadcastMAC {
					r = dropNotForUs
				} else {
					p.handleARP(&f)
				}
			}
		}
		if r != dropNone {
			p.drops[r].Add(1)
		}
		p.pollFr[nfree] = d.m
		nfree++
	}
	if len(deliver) > 0 {
		p.qmu.Lock()
		for _, it := range deliver {
			if p.qLen == len(p.q) || p.closed {
				p.drops[dropRxQueueFull].Add(1)
				p.pollFr[nfree] = it.m
				nfree++
				continue
			}
			j := p.qHead + p.qLen
			if j >= len(p.q) {
				j -= len(p.q)
			}
			p.q[j] = it
			p.qLen++
		}
		p.qmu.Unlock()
		select {
		case p.ready <- struct{}{}:
		default:
		}
	}
	if nfree > 0 {
		C.raptor_free(p.pollFree, C.uint(nfree))
	}
}

// rxFlags maps mbuf ol_flags to checksum verdicts; "unknown" falls back to
// software verification.
func rxFlags(ol uint64) (ip, udp rxCsum) {
	ip, udp = csumVerify, csumVerify
	switch ol & C.RTE_MBUF_F_RX_IP_CKSUM_MASK {
	case C.RTE_MBUF_F_RX_IP_CKSUM_GOOD:
		ip = csumGood
	case C.RTE_MBUF_F_RX_IP_CKSUM_BAD:
		ip = csumBad
	}
	switch ol & C.RTE_MBUF_F_RX_L4_CKSUM_MASK {
	case C.RTE_MBUF_F_RX_L4_CKSUM_GOOD:
		udp = csumGood
	case C.RTE_MBUF_F_RX_L4_CKSUM_BAD:
		udp = csumBad
	}
	return ip, udp
}

// handleARP learns from an ARP packet, answers requests for our address and
// sends the datagrams that waited for the sender's MAC (RFC 826).
func (p *Port) handleARP(f *frameInfo) {
	if f.arpOp == arpOpRequest {
		p.ctr[cARPReqRecv].Add(1)
	} else {
		p.ctr[cARPRepRecv].Add(1)
	}
	if f.arpSPA == p.local.Addr() || !f.arpSPA.IsValid() || f.arpSPA.IsUnspecified() {
		return // our own, or a probe (RFC 5227) with no sender address
	}
	toUs := f.arpTPA == p.local.Addr()
	p.txmu.Lock()
	defer p.txmu.Unlock()
	if p.txClosed {
		return
	}
	updated, pending := p.arp.learn(f.arpSPA, f.arpSHA, toUs, p.now())
	if updated {
		p.ctr[cARPResolved].Add(1)
	}
	if f.arpOp == arpOpRequest && toUs {
		p.sendARPLocked(arpOpReply, f.srcMAC, f.arpSHA, f.arpSPA)
	}
	if pending {
		p.flushB, p.flushA = p.flushB[:0], p.flushA[:0]
		p.arp.takePending(f.arpSPA, func(dst netip.AddrPort, payload []byte) {
			p.flushB = append(p.flushB, payload)
			p.flushA = append(p.flushA, dst)
		})
		// The slots were released but their buffers stay untouched until the
		// next enqueue, which needs txmu: still held.
		_, _ = p.writeLocked(p.flushB, p.flushA)
		clear(p.flushB)
	}
}

// Stats returns the port's counters (device counters from rte_eth_stats_get).
func (p *Port) Stats() Stats {
	var st Stats
	p.txmu.Lock()
	dev := p.lastDev
	if !p.txClosed {
		C.raptor_stats(p.port, &dev)
	}
	st.ARP.Entries = uint64(p.arp.size())
	p.txmu.Unlock()
	st.RxPackets, st.RxBytes = uint64(dev.ipackets), uint64(dev.ibytes)
	st.TxPackets, st.TxBytes = uint64(dev.opackets), uint64(dev.obytes)
	st.RxMissed, st.RxErrors, st.TxErrors = uint64(dev.imissed), uint64(dev.ierrors), uint64(dev.oerrors)
	st.RxNoMbuf = uint64(dev.rx_nombuf)
	st.RxDatagrams, st.RxPayloadBytes = p.ctr[cRxDatagrams].Load(), p.ctr[cRxPayload].Load()
	st.TxDatagrams, st.TxPayloadBytes = p.ctr[cTxDatagrams].Load(), p.ctr[cTxPayload].Load()
	st.MbufAllocFailures = p.ctr[cMbufFail].Load()
	st.PollSleeps = p.ctr[cPollSleeps].Load()
	st.ARP.RequestsSent, st.ARP.RepliesSent = p.ctr[cARPReqSent].Load(), p.ctr[cARPRepSent].Load()
	st.ARP.RequestsReceived, st.ARP.RepliesReceived = p.ctr[cARPReqRecv].Load(), p.ctr[cARPRepRecv].Load()
	st.ARP.Resolved, st.ARP.Timeouts = p.ctr[cARPResolved].Load(), p.ctr[cARPTimeouts].Load()
	var d [numDropReasons]uint64
	for i := range d {
		d[i] = p.drops[i].Load()
	}
	st.Drops = dropStatsFrom(&d)
	return st
}

// Close stops the poll loop, unblocks ReadBatch (it returns an error
// wrapping net.ErrClosed), frees queued mbufs, stops and detaches the device
// and frees the pool. It is idempotent and safe to call concurrently.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		p.stopping.Store(true)
		close(p.quit)
		<-p.done
		p.qmu.Lock()
		p.closed = true
		for p.qLen > 0 {
			n := min(p.qLen, readChunk)
			for i := 0; i < n; i++ {
				p.rdFr[i] = p.q[p.qHead].m
				p.q[p.qHead] = rxItem{}
				if p.qHead++; p.qHead == len(p.q) {
					p.qHead = 0
				}
			}
			p.qLen -= n
			C.raptor_free(p.rdFree, C.uint(n))
		}
		p.qmu.Unlock()
		p.txmu.Lock()
		C.raptor_stats(p.port, &p.lastDev)
		p.txClosed = true
		p.txmu.Unlock()
		p.closeErr = p.release()
		p.cfg.Logger.Info("dpdk port closed", "device", p.name, "local", p.local.String())
	})
	return p.closeErr
}
