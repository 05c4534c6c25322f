//go:build dpdk && linux && cgo

package integration

// Benchmarks of the DPDK packet path against the kernel packet path on the
// same veth pair (issue 6). Side A (namespace nsD, interface dev) sends
// either through a kernel UDP socket (Raptor's kernel path, internal/udpio:
// recvmmsg/sendmmsg, UDP GSO for runs of equal-size datagrams) or through a
// DPDK net_af_packet port on dev; side B (nsK, peer) runs the same kernel
// UDP echo (port 5000) and the same counting sink (port 5001) for both.
//
//	go test -tags dpdk -run '^$' -bench VethPingPong -benchtime 2000x ./integration/
//	go test -tags dpdk -run '^$' -bench VethThroughput -benchtime 200000x ./integration/
//
// These are measurements, not assertions: they fail only when the path
// stops working (no echo for seconds, a hard time limit, a send error).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raptormq/raptor/dpdk"
	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/reliable"
	"golang.org/x/net/ipv4"
)

const (
	benchLeafLimit  = 60 * time.Second       // hard bound of one benchmark run (one b.N)
	benchStallAfter = 100 * time.Millisecond // ping-pong: resend when no echo for this long
	benchStallMax   = 5 * time.Second        // ping-pong: give up after no echo for this long
	benchTxBatch    = 32                     // datagrams per WriteBatch (DPDK's default burst)
	benchEchoPort   = 5000
	benchSinkPort   = 5001
	benchLocalPort  = 4000
)

// benchSizes are the payload sizes of every benchmark.
var benchSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"1KiB", 1024}}

// benchSeq makes the sequence numbers of every ping-pong run distinct, so
// that a late echo from an earlier run is never taken for a current one.
var benchSeq atomic.Uint64

// vethBench is one veth pair with the kernel echo and the counting sink
// running on side B.
type vethBench struct {
	v        *dpVeth
	kernelA  netip.Addr // side A's kernel address (only while a kernel sub-benchmark runs)
	echo     netip.AddrPort
	sink     netip.AddrPort
	sinkConn *udpio.Conn
	sinkN    atomic.Uint64 // datagrams received by the sink
	sinkLast atomic.Int64  // UnixNano of the sink's last receive
}

// newVethBench creates the veth pair and starts side B's kernel echo and
// sink (udpio Conns: recvmmsg, and sendmmsg for the echo), all removed in
// b.Cleanup.
func newVethBench(b *testing.B) *vethBench {
	b.Helper()
	v := newDPVeth(b)
	vb := &vethBench{
		v:       v,
		kernelA: netip.AddrFrom4([4]byte{10, 213, byte(v.seq), 3}),
		echo:    netip.AddrPortFrom(v.kernelIP, benchEchoPort),
		sink:    netip.AddrPortFrom(v.kernelIP, benchSinkPort),
	}
	var echo *udpio.Conn
	if err := dpInNetns(v.nsK, func() error {
		var err error
		if echo, err = udpio.Listen(vb.echo.String()); err != nil {
			return err
		}
		vb.sinkConn, err = udpio.Listen(vb.sink.String())
		return err
	}); err != nil {
		b.Fatalf("kernel echo/sink in %s: %v", v.nsK, err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { echo.Close(); vb.sinkConn.Close(); wg.Wait() })
	wg.Add(2)
	go func() { // echo: every datagram straight back to its sender
		defer wg.Done()
		bufs, sizes, addrs := benchBufs(64)
		for {
			n, err := echo.ReadBatch(bufs, sizes, addrs)
			if err != nil {
				return
			}
			for i := 0; i < n; i++ {
				bufs[i] = bufs[i][:sizes[i]]
			}
			echo.WriteBatch(bufs[:n], addrs[:n])
			for i := 0; i < n; i++ {
				bufs[i] = bufs[i][:cap(bufs[i])]
			}
		}
	}()
	go func() { // sink: count
		defer wg.Done()
		bufs, sizes, addrs := benchBufs(64)
		for {
			n, err := vb.sinkConn.ReadBatch(bufs, sizes, addrs)
			if err != nil {
				return
			}
			vb.sinkN.Add(uint64(n))
			vb.sinkLast.Store(time.Now().UnixNano())
		}
	}()
	return vb
}

func benchBufs(n int) ([][]byte, []int, []netip.AddrPort) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	return bufs, make([]int, n), make([]netip.AddrPort, n)
}

// batchWriter sends a batch of datagrams (PacketConn.WriteBatch or the
// x/net sendmmsg writer).
type batchWriter func(bufs [][]byte, addrs []netip.AddrPort) (int, error)

// benchPath is side A's end of one path: pc receives (and sends, unless
// write overrides it).
type benchPath struct {
	pc    reliable.PacketConn
	write batchWriter
	port  *dpdk.Port  // nil on the kernel path
	kconn *udpio.Conn // the kernel path's Conn, nil when writes bypass it (noGSO) and on DPDK
}

// openKernel gives side A's veth end the kernel address vb.kernelA and
// opens a udpio Conn on it (Raptor's kernel path). With noGSO, writes go
// through golang.org/x/net/ipv4's WriteBatch instead (plain sendmmsg, one
// skb per datagram). The address is removed in b.Cleanup, so that the DPDK
// sub-benchmark finds the interface as the DPDK tests do.
func (vb *vethBench) openKernel(b *testing.B, noGSO bool) *benchPath {
	b.Helper()
	v := vb.v
	dpRun(b, "", "ip", "-n", v.nsD, "addr", "add", vb.kernelA.String()+"/24", "dev", v.dev)
	b.Cleanup(func() { dpRunErr("", "ip", "-n", v.nsD, "addr", "del", vb.kernelA.String()+"/24", "dev", v.dev) })
	var uc *net.UDPConn
	if err := dpInNetns(v.nsD, func() error {
		var err error
		uc, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(vb.kernelA, benchLocalPort)))
		return err
	}); err != nil {
		b.Fatalf("kernel UDP socket in %s: %v", v.nsD, err)
	}
	xp := ipv4.NewPacketConn(uc)
	c, err := udpio.New(uc)
	if err != nil {
		uc.Close()
		b.Fatalf("udpio.New: %v", err)
	}
	b.Cleanup(func() { c.Close() })
	p := &benchPath{pc: c, write: c.WriteBatch, kconn: c}
	if noGSO {
		p.kconn = nil
		ms := make([]ipv4.Message, benchTxBatch)
		var lastAP netip.AddrPort
		var lastUA *net.UDPAddr
		p.write = func(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
			for i := range bufs {
				if addrs[i] != lastAP || lastUA == nil {
					lastAP, lastUA = addrs[i], net.UDPAddrFromAddrPort(addrs[i])
				}
				ms[i].Buffers = bufs[i : i+1]
				ms[i].Addr = lastUA
			}
			sent := 0
			for sent < len(bufs) {
				n, err := xp.WriteBatch(ms[sent:len(bufs)], 0)
				sent += n
				if err != nil {
					return sent, err
				}
			}
			return sent, nil
		}
	}
	return p
}

// openDPDK opens a net_af_packet port on side A's veth end (as
// dpVeth.openDPDK, which takes a *testing.T); busyPoll makes its poll loop
// never sleep. The EAL is the process's single one (dpdk.InitEAL, shared
// with the other DPDK integration tests of the binary).
func (vb *vethBench) openDPDK(b *testing.B, busyPoll bool) *benchPath {
	b.Helper()
	v := vb.v
	if err := dpdk.InitEAL(nil); err != nil { // from this thread, so EAL threads stay in the root namespace
		b.Fatalf("EAL: %v", err)
	}
	cfg := dpdk.Config{
		Device:    fmt.Sprintf("net_af_packet%d,iface=%s", v.seq, v.dev),
		LocalAddr: netip.AddrPortFrom(v.dpdkIP, benchLocalPort),
		Subnet:    netip.PrefixFrom(v.dpdkIP, 24).Masked(),
		Logger:    dpQuiet,
	}
	if busyPoll {
		cfg.IdleSleepMax = -1
	}
	var p *dpdk.Port
	if err := dpInNetns(v.nsD, func() error {
		var err error
		p, err = dpdk.Open(cfg)
		return err
	}); err != nil {
		b.Fatalf("dpdk.Open on %s in %s: %v", v.dev, v.nsD, err)
	}
	b.Cleanup(func() { p.Close() })
	return &benchPath{pc: p, write: p.WriteBatch, port: p}
}

// pingPongGuard bounds a ping-pong run: it resends the outstanding datagram
// when no echo came for benchStallAfter, and closes the PacketConn (which
// ends the run with an error) after benchStallMax without an echo or when
// the run exceeds benchLeafLimit.
type pingPongGuard struct {
	pc      reliable.PacketConn
	dst     netip.AddrPort
	size    int
	seq     atomic.Uint64 // outstanding sequence number
	done    atomic.Uint64 // round trips completed
	resends atomic.Uint64
	failed  atomic.Pointer[string]
	stop    chan struct{}
	exited  chan struct{}
}

func (g *pingPongGuard) run() {
	defer close(g.exited)
	tick := time.NewTicker(benchStallAfter / 2)
	defer tick.Stop()
	deadline := time.Now().Add(benchLeafLimit)
	buf := make([]byte, g.size)
	var lastDone uint64
	var lastProgress = time.Now()
	for {
		select {
		case <-g.stop:
			return
		case now := <-tick.C:
			fail := func(s string) { g.failed.Store(&s); g.pc.Close() }
			if now.After(deadline) {
				fail(fmt.Sprintf("run exceeded %v", benchLeafLimit))
				return
			}
			if d := g.done.Load(); d != lastDone {
				lastDone, lastProgress = d, now
				continue
			}
			stalled := now.Sub(lastProgress)
			if stalled > benchStallMax {
				fail(fmt.Sprintf("no echo of datagram %d for %v", g.seq.Load(), stalled.Round(time.Millisecond)))
				return
			}
			if stalled >= benchStallAfter {
				binary.LittleEndian.PutUint64(buf, g.seq.Load())
				g.pc.WriteBatch([][]byte{buf}, []netip.AddrPort{g.dst})
				g.resends.Add(1)
			}
		}
	}
}

// pingPong sends n datagrams of size bytes to the echo one at a time, each
// after the previous one's echo, and returns the round-trip times (nil
// when rtts is false) and the resends.
func pingPong(p *benchPath, dst netip.AddrPort, size, n int, rtts []time.Duration) (resends uint64, err error) {
	g := &pingPongGuard{pc: p.pc, dst: dst, size: size, stop: make(chan struct{}), exited: make(chan struct{})}
	go g.run()
	defer func() { close(g.stop); <-g.exited }()
	base := benchSeq.Add(1) << 32
	msg := make([]byte, size)
	for i := 8; i < size; i++ {
		msg[i] = byte(i)
	}
	out, dsts := [][]byte{msg}, []netip.AddrPort{dst}
	bufs, sizes, addrs := benchBufs(8)
	for i := 0; i < n; i++ {
		seq := base + uint64(i)
		binary.LittleEndian.PutUint64(msg, seq)
		g.seq.Store(seq)
		start := time.Now()
		if _, err := p.pc.WriteBatch(out, dsts); err != nil {
			var drop *dpdk.TxDropError
			if !errors.As(err, &drop) { // a drop is resent by the guard
				return g.resends.Load(), fmt.Errorf("round trip %d: WriteBatch: %w", i, err)
			}
		}
	wait:
		for {
			k, err := p.pc.ReadBatch(bufs, sizes, addrs)
			if err != nil {
				if s := g.failed.Load(); s != nil {
					err = fmt.Errorf("%s (%w)", *s, err)
				}
				return g.resends.Load(), fmt.Errorf("round trip %d: ReadBatch: %w", i, err)
			}
			for j := 0; j < k; j++ {
				if sizes[j] == size && binary.LittleEndian.Uint64(bufs[j]) == seq {
					break wait
				}
			}
		}
		if rtts != nil {
			rtts[i] = time.Since(start)
		}
		g.done.Add(1)
	}
	return g.resends.Load(), nil
}

// BenchmarkVethPingPong measures round trips side A → kernel UDP echo on
// side B → side A, one datagram in flight, over one veth pair: through
// Raptor's kernel path (udpio) and through a DPDK net_af_packet port (default
// idle sleeps, and busy-polling). ns/op is one round trip; p50-ns and
// p99-ns are its percentiles.
func BenchmarkVethPingPong(b *testing.B) {
	vb := newVethBench(b)
	paths := []struct {
		name string
		open func(*testing.B) *benchPath
	}{
		{"kernel", func(b *testing.B) *benchPath { return vb.openKernel(b, false) }},
		{"dpdk", func(b *testing.B) *benchPath { return vb.openDPDK(b, false) }},
		{"dpdk-busypoll", func(b *testing.B) *benchPath { return vb.openDPDK(b, true) }},
	}
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			if path.name == "dpdk-busypoll" && runtime.GOMAXPROCS(0) < 2 {
				// The busy poll loop keeps its (locked) thread's P; with one P
				// the other goroutines run only when it is preempted (~10 ms
				// RTT, beyond the time bound).
				b.Skip("skipped: busy-polling needs GOMAXPROCS >= 2")
			}
			p := path.open(b)
			for _, sz := range benchSizes {
				b.Run(sz.name, func(b *testing.B) {
					// Warm-up (untimed): ARP/neighbour resolution, caches.
					if _, err := pingPong(p, vb.echo, sz.size, 50, nil); err != nil {
						b.Fatalf("warm-up: %v", err)
					}
					rtts := make([]time.Duration, b.N)
					b.SetBytes(int64(2 * sz.size))
					b.ResetTimer()
					resends, err := pingPong(p, vb.echo, sz.size, b.N, rtts)
					b.StopTimer()
					if err != nil {
						b.Fatalf("%s %s: %v", path.name, sz.name, err)
					}
					slices.Sort(rtts)
					b.ReportMetric(float64(rtts[len(rtts)/2].Nanoseconds()), "p50-ns")
					b.ReportMetric(float64(rtts[len(rtts)*99/100].Nanoseconds()), "p99-ns")
					b.ReportMetric(float64(resends), "resends")
					if p.port != nil && b.N > 1 {
						st := p.port.Stats()
						drops := "none"
						if st.Drops != (dpdk.DropStats{}) {
							drops = fmt.Sprintf("%+v", st.Drops)
						}
						b.Logf("DPDK port (cumulative): rx %d tx %d datagrams, poll sleeps %d, drops %s", st.RxDatagrams, st.TxDatagrams, st.PollSleeps, drops)
					}
				})
			}
		})
	}
}

// BenchmarkVethThroughput measures one-way datagrams from side A to the
// kernel UDP sink on side B over one veth pair, sent as fast as the path
// accepts them in batches of 32 (WriteBatch): through Raptor's kernel path
// (udpio: sendmmsg, UDP GSO), plain sendmmsg without GSO (x/net ipv4), and
// a DPDK net_af_packet port. ns/op is the sender's time per datagram;
// rx-dgram/s is what the sink received per second (first send to last
// receive), tx-dgram/s what the sender handed over, loss-% the datagrams
// sent but never received.
func BenchmarkVethThroughput(b *testing.B) {
	vb := newVethBench(b)
	paths := []struct {
		name string
		open func(*testing.B) *benchPath
	}{
		{"kernel", func(b *testing.B) *benchPath { return vb.openKernel(b, false) }},
		{"kernel-nogso", func(b *testing.B) *benchPath { return vb.openKernel(b, true) }},
		{"dpdk", func(b *testing.B) *benchPath { return vb.openDPDK(b, false) }},
	}
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			p := path.open(b)
			for _, sz := range benchSizes {
				b.Run(sz.name, func(b *testing.B) {
					throughput(b, vb, p, sz.size)
				})
			}
		})
	}
}

func throughput(b *testing.B, vb *vethBench, p *benchPath, size int) {
	// Warm-up (untimed): resolve side B's MAC through the echo (same address).
	if _, err := pingPong(p, vb.echo, 64, 20, nil); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	bufs := make([][]byte, benchTxBatch)
	dsts := make([]netip.AddrPort, benchTxBatch)
	for i := range bufs {
		bufs[i] = make([]byte, size)
		dsts[i] = vb.sink
	}
	var dropsBefore uint64
	if p.port != nil {
		dropsBefore = p.port.Stats().Drops.TxQueueFull
	}
	rcvbufBefore := vb.sinkRcvbufErrors(b)
	var kBefore udpio.Stats
	if p.kconn != nil {
		kBefore = p.kconn.Stats()
	}
	before := vb.sinkN.Load()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	deadline := start.Add(benchLeafLimit)
	sent, retries := 0, 0
	for sent < b.N {
		k := min(benchTxBatch, b.N-sent)
		n, err := p.write(bufs[:k], dsts[:k])
		sent += n
		if err != nil {
			var drop *dpdk.TxDropError
			if !errors.As(err, &drop) {
				b.Fatalf("WriteBatch after %d datagrams: %v", sent, err)
			}
			retries++ // DPDK tx queue full for TxWait: send the rest again
		}
		if sent&1023 < benchTxBatch && time.Now().After(deadline) {
			b.Fatalf("sent only %d of %d datagrams in %v", sent, b.N, benchLeafLimit)
		}
	}
	b.StopTimer()
	sendDur := time.Since(start)
	// Drain: until everything arrived or nothing arrived for 200 ms (2 s at most).
	drainEnd := time.Now().Add(2 * time.Second)
	for last := vb.sinkN.Load(); last-before < uint64(sent) && time.Now().Before(drainEnd); {
		time.Sleep(200 * time.Millisecond)
		n := vb.sinkN.Load()
		if n == last {
			break
		}
		last = n
	}
	recv := vb.sinkN.Load() - before
	rxDur := time.Duration(vb.sinkLast.Load() - start.UnixNano())
	rxRate := 0.0
	if recv > 0 && rxDur > 0 {
		rxRate = float64(recv) / rxDur.Seconds()
	}
	b.ReportMetric(rxRate, "rx-dgram/s")
	b.ReportMetric(float64(sent)/sendDur.Seconds(), "tx-dgram/s")
	b.ReportMetric(100*float64(uint64(sent)-min(recv, uint64(sent)))/float64(sent), "loss-%")
	if b.N > 1 {
		msg := fmt.Sprintf("sent %d, received %d, sink RcvbufErrors +%d", sent, recv, vb.sinkRcvbufErrors(b)-rcvbufBefore)
		if p.port != nil {
			st := p.port.Stats()
			msg += fmt.Sprintf(", DPDK tx-queue-full drops +%d (%d WriteBatch retries), device tx errors %d", st.Drops.TxQueueFull-dropsBefore, retries, st.TxErrors)
		} else if p.kconn != nil {
			st := p.kconn.Stats()
			msg += fmt.Sprintf(", udpio: %d sendmmsg calls, %d GSO messages", st.WriteSyscalls-kBefore.WriteSyscalls, st.GSOMessages-kBefore.GSOMessages)
		}
		b.Log(msg)
	}
}

// sinkRcvbufErrors reads side B's Udp RcvbufErrors counter (datagrams the
// kernel dropped because a socket's receive buffer was full).
func (vb *vethBench) sinkRcvbufErrors(b *testing.B) uint64 {
	snmp := dpRun(b, "", "ip", "netns", "exec", vb.v.nsK, "cat", "/proc/net/snmp")
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(f) {
				var v uint64
				fmt.Sscan(f[i], &v)
				return v
			}
		}
	}
	return 0
}
