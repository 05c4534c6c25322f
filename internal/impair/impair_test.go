package impair

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
	"github.com/raptormq/raptor/internal/udpio"
)

var _ PacketConn = (*Conn)(nil)
var _ PacketConn = (*udpio.Conn)(nil)
var _ PacketConn = (*simnet.Conn)(nil)

func loopback(t *testing.T) (*udpio.Conn, *udpio.Conn) {
	t.Helper()
	a, err := udpio.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b, err := udpio.Listen("127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// sendSeq sends datagrams carrying 0..n-1 to dst, batch at a time.
func sendSeq(t *testing.T, c PacketConn, dst netip.AddrPort, n, batch int) {
	t.Helper()
	bufs := make([][]byte, batch)
	addrs := make([]netip.AddrPort, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 8)
		addrs[i] = dst
	}
	for i := 0; i < n; i += batch {
		k := min(batch, n-i)
		for j := 0; j < k; j++ {
			binary.BigEndian.PutUint64(bufs[j], uint64(i+j))
		}
		if m, err := c.WriteBatch(bufs[:k], addrs[:k]); m != k || err != nil {
			t.Fatalf("WriteBatch = %d, %v", m, err)
		}
	}
}

// recvAll reads until want datagrams arrived or the conn has been quiet for
// quiet (a bounded wait for datagrams that will never come).
func recvAll(t *testing.T, c PacketConn, want int, quiet time.Duration) []uint64 {
	t.Helper()
	type batch struct {
		ids []uint64
		err error
	}
	ch := make(chan batch, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		bufs := make([][]byte, 32)
		for i := range bufs {
			bufs[i] = make([]byte, 64)
		}
		sizes := make([]int, 32)
		addrs := make([]netip.AddrPort, 32)
		for {
			n, err := c.ReadBatch(bufs, sizes, addrs)
			var b batch
			for i := 0; i < n; i++ {
				b.ids = append(b.ids, binary.BigEndian.Uint64(bufs[i]))
			}
			b.err = err
			select {
			case ch <- b:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var ids []uint64
	for len(ids) < want {
		select {
		case b := <-ch:
			ids = append(ids, b.ids...)
			if b.err != nil {
				return ids
			}
		case <-time.After(quiet):
			c.Close()
			return ids
		}
	}
	return ids
}

func TestSendLossSeeded(t *testing.T) {
	const seed, total, loss = 3, 3000, 0.3
	t.Logf("seed %d", seed)
	run := func() ([]uint64, Stats) {
		a, b := loopback(t)
		w := Wrap(a, Config{Seed: seed, SendLoss: loss})
		sendSeq(t, w, b.LocalAddr(), total, 16)
		st := w.Stats()
		return recvAll(t, b, int(total-st.SendLost), 5*time.Second), st
	}
	ids1, st := run()
	if len(ids1) != int(total-st.SendLost) || st.Sent != uint64(len(ids1)) {
		t.Fatalf("received %d, stats %+v", len(ids1), st)
	}
	if dev := math.Abs(float64(st.SendLost) - total*loss); dev > 5*math.Sqrt(total*loss*(1-loss)) {
		t.Fatalf("lost %d of %d, want about %.0f", st.SendLost, total, total*loss)
	}
	ids2, _ := run()
	if len(ids1) != len(ids2) {
		t.Fatalf("same seed, %d vs %d received", len(ids1), len(ids2))
	}
	for i := range ids1 {
		if ids1[i] != ids2[i] {
			t.Fatalf("same seed, different survivors at %d: %d vs %d", i, ids1[i], ids2[i])
		}
	}
	t.Logf("lost %d of %d", st.SendLost, total)
}

func TestRecvLossAndDuplicate(t *testing.T) {
	a, b := loopback(t)
	w := Wrap(a, Config{Seed: 1, Duplicate: 1})
	r := Wrap(b, Config{Seed: 2, RecvLoss: 0.5})
	sendSeq(t, w, b.LocalAddr(), 500, 10)
	if st := w.Stats(); st.Duplicated != 500 || st.Sent != 1000 {
		t.Fatalf("sender stats %+v", st)
	}
	// Read until all 1000 copies have been seen (kept or dropped by RecvLoss).
	bufs := make([][]byte, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 64)
	}
	sizes, addrs := make([]int, 32), make([]netip.AddrPort, 32)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := 0
	for st := r.Stats(); st.Received+st.RecvLost < 1000; st = r.Stats() {
		n, err := r.ReadBatch(bufs, sizes, addrs)
		if err != nil {
			t.Fatalf("ReadBatch after %+v: %v", st, err)
		}
		got += n
	}
	st := r.Stats()
	if st.Received != uint64(got) || st.Received+st.RecvLost != 1000 {
		t.Fatalf("received %d, stats %+v", got, st)
	}
	if st.RecvLost < 400 || st.RecvLost > 600 {
		t.Fatalf("RecvLoss 0.5 dropped %d of 1000", st.RecvLost)
	}
}

func TestDelayLoopback(t *testing.T) {
	a, b := loopback(t)
	const delay = 30 * time.Millisecond
	w := Wrap(a, Config{Delay: delay})
	defer w.Close()
	start := time.Now()
	sendSeq(t, w, b.LocalAddr(), 100, 10)
	got := recvAll(t, b, 100, 5*time.Second)
	el := time.Since(start)
	if len(got) != 100 || el < delay {
		t.Fatalf("received %d after %v, want 100 after at least %v", len(got), el, delay)
	}
	for i, id := range got {
		if id != uint64(i) {
			t.Fatalf("order: %d at %d", id, i)
		}
	}
	// The delay goroutine counts a batch as sent after WriteBatch returns,
	// which can be after the receiver has it: Close joins that goroutine.
	w.Close()
	if st := w.Stats(); st.Delayed != 100 || st.Sent != 100 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDelayVirtual runs impair over simnet in a synctest bubble, where the
// delay can be checked exactly and the queue bound observed.
func TestDelayVirtual(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, _ := simnet.New(simnet.Config{Link: simnet.LinkConfig{Delay: 5 * time.Millisecond}})
		defer n.Close()
		a, _ := n.Listen(netip.MustParseAddrPort("10.0.0.1:1"))
		b, _ := n.Listen(netip.MustParseAddrPort("10.0.0.2:2"))
		w := Wrap(a, Config{Delay: 20 * time.Millisecond, QueueLen: 10})
		start := time.Now()
		sendSeq(t, w, b.LocalAddr(), 15, 15)
		bufs := make([][]byte, 32)
		for i := range bufs {
			bufs[i] = make([]byte, 64)
		}
		sizes, addrs := make([]int, 32), make([]netip.AddrPort, 32)
		// The 10 the queue held all arrive at the same virtual instant, but
		// simnet may hand them over in more than one batch: read until all are in.
		for got := 0; got < 10; {
			k, err := b.ReadBatch(bufs, sizes, addrs)
			if err != nil || k < 1 || got+k > 10 {
				t.Fatalf("ReadBatch = %d, %v after %d; want the 10 the queue held", k, err, got)
			}
			got += k
			if el := time.Since(start); el != 25*time.Millisecond {
				t.Fatalf("%d arrived after %v, want exactly 25ms (20 impair + 5 link)", got, el)
			}
		}
		if st := w.Stats(); st.QueueDrops != 5 || st.Delayed != 10 {
			t.Fatalf("stats %+v", st)
		}
		// Queue more, then close before they are due: discarded, goroutine ends.
		sendSeq(t, w, b.LocalAddr(), 3, 3)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.Discarded != 3 {
			t.Fatalf("Discarded = %d, want 3", st.Discarded)
		}
		if _, err := w.WriteBatch([][]byte{{1}}, []netip.AddrPort{b.LocalAddr()}); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteBatch after Close: %v", err)
		}
	})
}

func TestCloseUnblocksRead(t *testing.T) {
	a, _ := loopback(t)
	w := Wrap(a, Config{RecvLoss: 0.1})
	errc := make(chan error, 1)
	go func() {
		_, err := w.ReadBatch([][]byte{make([]byte, 8)}, make([]int, 1), make([]netip.AddrPort, 1))
		errc <- err
	}()
	w.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadBatch still blocked 10s after Close")
	}
}

// discard is an inner conn that accepts everything, for allocation counts.
type discard struct{}

func (discard) ReadBatch([][]byte, []int, []netip.AddrPort) (int, error) { return 0, net.ErrClosed }
func (discard) WriteBatch(b [][]byte, _ []netip.AddrPort) (int, error)   { return len(b), nil }
func (discard) LocalAddr() netip.AddrPort                                { return netip.AddrPort{} }
func (discard) Close() error                                             { return nil }

type failAt struct {
	discard
	k int
}

func (f failAt) WriteBatch(b [][]byte, _ []netip.AddrPort) (int, error) {
	return min(f.k, len(b)), errors.New("device full")
}

func TestAllocsAndErrorIndex(t *testing.T) {
	w := Wrap(discard{}, Config{Seed: 9, SendLoss: 0.2, Duplicate: 0.2})
	bufs := make([][]byte, 32)
	addrs := make([]netip.AddrPort, 32)
	for i := range bufs {
		bufs[i] = make([]byte, 100)
		addrs[i] = netip.MustParseAddrPort("127.0.0.1:9")
	}
	w.WriteBatch(bufs, addrs) // grow the reusable batch
	if a := testing.AllocsPerRun(100, func() { w.WriteBatch(bufs, addrs) }); a != 0 {
		t.Fatalf("%.1f allocations per WriteBatch, want 0", a)
	}
	// The inner conn fails on its 3rd datagram: with no faults that is index 2.
	f := Wrap(failAt{k: 2}, Config{})
	if n, err := f.WriteBatch(bufs[:5], addrs[:5]); n != 2 || err == nil {
		t.Fatalf("WriteBatch = %d, %v; want 2 and the inner error", n, err)
	}
	var ce *ConfigError
	if err := (Config{SendLoss: 2}).Validate(); !errors.As(err, &ce) || ce.Field != "SendLoss" {
		t.Fatalf("Validate: %v", err)
	}
}

// BenchmarkWriteBatchLoss measures the overhead of the wrapper on a batch of
// 64 (20% loss) over a discarding inner conn.
func BenchmarkWriteBatchLoss(b *testing.B) {
	w := Wrap(discard{}, Config{SendLoss: 0.2})
	bufs := make([][]byte, 64)
	addrs := make([]netip.AddrPort, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 1200)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.WriteBatch(bufs, addrs)
	}
}
