package simnet

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"reflect"
	"testing"
	"testing/synctest"
	"time"
)

// packetConn mirrors reliable.PacketConn (this package must not import reliable).
type packetConn interface {
	ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (n int, err error)
	WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (n int, err error)
	LocalAddr() netip.AddrPort
	Close() error
}

var _ packetConn = (*Conn)(nil)

var (
	addrA = netip.MustParseAddrPort("10.0.0.1:1000")
	addrB = netip.MustParseAddrPort("10.0.0.2:2000")
)

func setup(t *testing.T, cfg Config) (*Network, *Conn, *Conn) {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	a, err := n.Listen(addrA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Listen(addrB)
	if err != nil {
		t.Fatal(err)
	}
	return n, a, b
}

func send(t *testing.T, c *Conn, to netip.AddrPort, payloads ...[]byte) {
	t.Helper()
	addrs := make([]netip.AddrPort, len(payloads))
	for i := range addrs {
		addrs[i] = to
	}
	if n, err := c.WriteBatch(payloads, addrs); n != len(payloads) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
}

type rcvd struct {
	at   time.Duration
	from netip.AddrPort
	data string
}

// drain reads everything that arrives until the network has been idle for
// idle (virtual) time.
func drain(t *testing.T, c *Conn, start time.Time, idle time.Duration) []rcvd {
	t.Helper()
	var out []rcvd
	bufs := make([][]byte, 16)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	sizes := make([]int, 16)
	addrs := make([]netip.AddrPort, 16)
	for {
		got := make(chan int, 1)
		go func() {
			n, _ := c.ReadBatch(bufs, sizes, addrs)
			got <- n
		}()
		select {
		case n := <-got:
			for i := 0; i < n; i++ {
				out = append(out, rcvd{time.Since(start), addrs[i], string(bufs[i][:sizes[i]])})
			}
		case <-time.After(idle):
			c.Close() // unblock the reader goroutine
			<-got
			return out
		}
	}
}

func TestDelayExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := setup(t, Config{Link: LinkConfig{Delay: 10 * time.Millisecond}})
		start := time.Now()
		send(t, a, addrB, []byte("hello"))
		bufs := [][]byte{make([]byte, 64)}
		sizes, addrs := make([]int, 1), make([]netip.AddrPort, 1)
		n, err := b.ReadBatch(bufs, sizes, addrs)
		if n != 1 || err != nil {
			t.Fatal(n, err)
		}
		if el := time.Since(start); el != 10*time.Millisecond {
			t.Fatalf("delivered after %v, want exactly 10ms", el)
		}
		if string(bufs[0][:sizes[0]]) != "hello" || addrs[0] != addrA {
			t.Fatalf("got %q from %v", bufs[0][:sizes[0]], addrs[0])
		}
	})
}

func TestWriteCopiesAndTruncates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := setup(t, Config{Link: LinkConfig{Delay: time.Millisecond}})
		buf := []byte("0123456789")
		send(t, a, addrB, buf)
		copy(buf, "XXXXXXXXXX") // the caller reuses its buffer at once
		bufs := [][]byte{make([]byte, 4)}
		sizes, addrs := make([]int, 1), make([]netip.AddrPort, 1)
		if n, err := b.ReadBatch(bufs, sizes, addrs); n != 1 || err != nil || string(bufs[0][:sizes[0]]) != "0123" {
			t.Fatalf("ReadBatch = %d, %v, %q", n, err, bufs[0][:sizes[0]])
		}
	})
}

func TestLossRate(t *testing.T) {
	const seed, total, loss = 42, 20000, 0.1
	t.Logf("seed %d", seed)
	synctest.Test(t, func(t *testing.T) {
		n, a, b := setup(t, Config{Seed: seed, RecvQueue: total, Link: LinkConfig{Loss: loss, Delay: time.Millisecond}})
		for i := 0; i < total; i++ {
			send(t, a, addrB, []byte{byte(i)})
		}
		got := drain(t, b, time.Now(), time.Second)
		st := n.Stats()
		// Binomial sd = sqrt(n p (1-p)) ~ 42; allow 5 sd.
		want := float64(total) * (1 - loss)
		if math.Abs(float64(len(got))-want) > 5*math.Sqrt(total*loss*(1-loss)) {
			t.Fatalf("delivered %d of %d, want about %.0f", len(got), total, want)
		}
		if st.Sent != total || st.Delivered != uint64(len(got)) || st.Drops(DropLoss) != uint64(total-len(got)) {
			t.Fatalf("stats %+v, received %d", st, len(got))
		}
		t.Logf("delivered %d of %d at loss %.2f", len(got), total, loss)
	})
}

func scenario(t *testing.T, seed int64) []rcvd {
	var trace []rcvd
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{Seed: seed, Link: LinkConfig{
			Loss: 0.2, Duplicate: 0.1, Reorder: 0.2, Delay: 5 * time.Millisecond,
			Jitter: 3 * time.Millisecond, Bandwidth: 1e6,
		}}
		_, a, b := setup(t, cfg)
		start := time.Now()
		for i := 0; i < 200; i++ {
			send(t, a, addrB, []byte(fmt.Sprintf("msg-%03d", i)))
			if i%10 == 9 {
				time.Sleep(time.Millisecond) // virtual: spread the sends out
			}
		}
		trace = drain(t, b, start, time.Second)
	})
	return trace
}

func TestDeterminism(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	r1, r2 := scenario(t, seed), scenario(t, seed)
	if len(r1) == 0 || !reflect.DeepEqual(r1, r2) {
		t.Fatalf("same seed, different traces (%d vs %d datagrams)", len(r1), len(r2))
	}
	if r3 := scenario(t, seed+1); reflect.DeepEqual(r1, r3) {
		t.Fatal("different seeds gave identical traces")
	}
	reordered := 0
	for i := 1; i < len(r1); i++ {
		if r1[i].data < r1[i-1].data {
			reordered++
		}
	}
	t.Logf("%d datagrams delivered, %d out of order", len(r1), reordered)
	if reordered == 0 {
		t.Fatal("no reordering with Reorder=0.2 and jitter")
	}
}

func TestMTU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := setup(t, Config{Link: LinkConfig{MTU: 1200}})
		send(t, a, addrB, make([]byte, 1201), make([]byte, 1200))
		got := drain(t, b, time.Now(), time.Second)
		if len(got) != 1 || len(got[0].data) != 1200 {
			t.Fatalf("got %d datagrams", len(got))
		}
		if d := n.Stats().Drops(DropMTU); d != 1 {
			t.Fatalf("MTU drops = %d", d)
		}
	})
}

func TestBandwidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 1 MB/s: a 1000-byte datagram takes 1ms on the wire; queue holds 5.
		n, a, b := setup(t, Config{Link: LinkConfig{Bandwidth: 1e6, QueueLen: 5, Delay: 2 * time.Millisecond}})
		start := time.Now()
		msgs := make([][]byte, 8)
		for i := range msgs {
			msgs[i] = make([]byte, 1000)
			msgs[i][0] = byte(i)
		}
		send(t, a, addrB, msgs...)
		got := drain(t, b, start, time.Second)
		if len(got) != 5 {
			t.Fatalf("delivered %d, want 5 (queue of 5)", len(got))
		}
		for i, g := range got {
			if want := time.Duration(i+1)*time.Millisecond + 2*time.Millisecond; g.at != want || g.data[0] != byte(i) {
				t.Fatalf("datagram %d (#%d) at %v, want %v", i, g.data[0], g.at, want)
			}
		}
		if d := n.Stats().Drops(DropQueue); d != 3 {
			t.Fatalf("queue drops = %d, want 3", d)
		}
	})
}

func TestOutageAndRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := setup(t, Config{Link: LinkConfig{Delay: time.Millisecond}})
		done := make(chan []rcvd)
		start := time.Now()
		go func() { done <- drain(t, b, start, 3*time.Second) }()
		for i := 0; i < 50; i++ { // one datagram every 100ms for 5s
			switch i {
			case 10: // a 2 s total outage
				cfg := n.DefaultLink()
				cfg.Loss = 1
				n.SetDefaultLink(cfg)
			case 30:
				cfg := n.DefaultLink()
				cfg.Loss = 0
				n.SetDefaultLink(cfg)
			}
			send(t, a, addrB, []byte{byte(i)})
			time.Sleep(100 * time.Millisecond)
		}
		got := <-done
		if len(got) != 30 || n.Stats().Drops(DropLoss) != 20 {
			t.Fatalf("received %d, lost %d; want 30 and 20", len(got), n.Stats().Drops(DropLoss))
		}
		if got[9].data[0] != 9 || got[10].data[0] != 30 {
			t.Fatalf("outage boundaries wrong: %v then %v", got[9].data[0], got[10].data[0])
		}
	})
}

func TestPartitionHealAndPerLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := setup(t, Config{})
		n.Partition(addrB, addrA)
		send(t, a, addrB, []byte("x"))
		send(t, b, addrA, []byte("y"))
		if d := n.Stats().Drops(DropPartition); d != 2 {
			t.Fatalf("partition drops = %d", d)
		}
		n.Heal(addrA, addrB)
		n.Partition(addrA, netip.AddrPort{}) // isolate A from everyone
		send(t, b, addrA, []byte("z"))
		n.Heal(addrA, netip.AddrPort{})
		// One direction lossy, the other perfect.
		if err := n.SetLink(addrA, addrB, LinkConfig{Loss: 1}); err != nil {
			t.Fatal(err)
		}
		send(t, a, addrB, []byte("lost"))
		send(t, b, addrA, []byte("kept"))
		n.ClearLink(addrA, addrB)
		send(t, a, addrB, []byte("back"))
		ga := drain(t, a, time.Now(), time.Second)
		gb := drain(t, b, time.Now(), time.Second)
		if len(ga) != 1 || ga[0].data != "kept" || len(gb) != 1 || gb[0].data != "back" {
			t.Fatalf("a got %v, b got %v", ga, gb)
		}
		st := n.Stats()
		if st.Drops(DropPartition) != 3 || st.Drops(DropLoss) != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestDuplicateAndRecvQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := setup(t, Config{RecvQueue: 4, Link: LinkConfig{Duplicate: 1}})
		send(t, a, addrB, []byte("1"), []byte("2"), []byte("3"))
		synctest.Wait()
		time.Sleep(time.Millisecond)
		st := n.Stats()
		if st.Duplicated != 3 || st.Delivered != 4 || st.Drops(DropRecvQueue) != 2 {
			t.Fatalf("stats %+v", st)
		}
		got := drain(t, b, time.Now(), time.Second)
		if len(got) != 4 || got[0].data != "1" || got[1].data != "1" {
			t.Fatalf("got %v", got)
		}
	})
}

// TestCorrupt: with LinkConfig.Corrupt 1 every datagram arrives, of its
// size, differing from what was sent in exactly one bit.
func TestCorrupt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := setup(t, Config{Link: LinkConfig{Corrupt: 1}})
		sent := []string{"abcdefgh", "x", "0123456789abcdef"}
		send(t, a, addrB, []byte(sent[0]), []byte(sent[1]), []byte(sent[2]))
		synctest.Wait()
		got := drain(t, b, time.Now(), time.Second)
		if len(got) != len(sent) || n.Stats().Corrupted != uint64(len(sent)) {
			t.Fatalf("got %v, stats %+v", got, n.Stats())
		}
		for i, g := range got {
			if len(g.data) != len(sent[i]) {
				t.Fatalf("datagram %d: %q, sent %q", i, g.data, sent[i])
			}
			flipped := 0
			for j := range g.data {
				flipped += bits.OnesCount8(g.data[j] ^ sent[i][j])
			}
			if flipped != 1 {
				t.Fatalf("datagram %d: %q, sent %q: %d bits differ", i, g.data, sent[i], flipped)
			}
		}
	})
	if _, err := New(Config{Link: LinkConfig{Corrupt: 1.5}}); err == nil {
		t.Fatal("Corrupt 1.5 accepted")
	}
}

func TestCloseAndNoEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, a, b := setup(t, Config{Link: LinkConfig{Delay: time.Millisecond}})
		errc := make(chan error)
		go func() {
			_, err := b.ReadBatch([][]byte{make([]byte, 8)}, make([]int, 1), make([]netip.AddrPort, 1))
			errc <- err
		}()
		synctest.Wait() // the reader is durably blocked
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v", err)
		}
		if _, err := b.WriteBatch([][]byte{{1}}, []netip.AddrPort{addrA}); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteBatch after Close: %v", err)
		}
		send(t, a, addrB, []byte("to nobody"))
		time.Sleep(2 * time.Millisecond)
		if d := n.Stats().Drops(DropNoEndpoint); d != 1 {
			t.Fatalf("no-endpoint drops = %d", d)
		}
		// The address can be reused.
		if _, err := n.Listen(addrB); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Listen(addrA); !errors.Is(err, ErrAddrInUse) {
			t.Fatalf("duplicate Listen: %v", err)
		}
		n.Close()
		if _, err := a.ReadBatch([][]byte{make([]byte, 8)}, make([]int, 1), make([]netip.AddrPort, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Network.Close: %v", err)
		}
	})
}

func TestListenPortZeroAndConfigErrors(t *testing.T) {
	n, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c1, _ := n.Listen(netip.MustParseAddrPort("10.0.0.9:0"))
	c2, _ := n.Listen(netip.MustParseAddrPort("10.0.0.9:0"))
	if c1.LocalAddr().Port() == 0 || c1.LocalAddr() == c2.LocalAddr() {
		t.Fatalf("ports %v %v", c1.LocalAddr(), c2.LocalAddr())
	}
	var ce *ConfigError
	if _, err := New(Config{Link: LinkConfig{Loss: 1.5}}); !errors.As(err, &ce) || ce.Field != "LinkConfig.Loss" {
		t.Fatalf("New with Loss 1.5: %v", err)
	}
	if err := n.SetDefaultLink(LinkConfig{Delay: -1}); !errors.As(err, &ce) {
		t.Fatalf("negative delay: %v", err)
	}
}

func TestTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var kinds []EventKind
		_, a, b := setup(t, Config{Trace: func(e Event) { kinds = append(kinds, e.Kind) }, Link: LinkConfig{Delay: time.Millisecond}})
		send(t, a, addrB, []byte("x"))
		drain(t, b, time.Now(), 10*time.Millisecond)
		if !reflect.DeepEqual(kinds, []EventKind{EventSent, EventDelivered}) {
			t.Fatalf("trace %v", kinds)
		}
	})
}

// TestReadDeadline: a deadline interrupts a blocked ReadBatch (when it
// passes, or at once when set in the past from another goroutine), the
// zero time clears it, and reads go on afterwards.
func TestReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := setup(t, Config{Link: LinkConfig{Delay: time.Millisecond}})
		bufs := [][]byte{make([]byte, 64)}
		sizes, addrs := make([]int, 1), make([]netip.AddrPort, 1)
		start := time.Now()
		b.SetReadDeadline(start.Add(5 * time.Millisecond))
		if _, err := b.ReadBatch(bufs, sizes, addrs); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadBatch past its deadline: %v, want os.ErrDeadlineExceeded", err)
		}
		if el := time.Since(start); el != 5*time.Millisecond {
			t.Fatalf("deadline returned after %v, want exactly 5ms", el)
		}
		if _, err := b.ReadBatch(bufs, sizes, addrs); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ReadBatch with the deadline still passed: %v", err)
		}
		b.SetReadDeadline(time.Time{})
		send(t, a, addrB, []byte("after"))
		if n, err := b.ReadBatch(bufs, sizes, addrs); n != 1 || err != nil || string(bufs[0][:sizes[0]]) != "after" {
			t.Fatalf("ReadBatch after clearing the deadline = %d, %v", n, err)
		}
		// A past deadline set from another goroutine interrupts a blocked read.
		errc := make(chan error, 1)
		go func() {
			_, err := b.ReadBatch(bufs, sizes, addrs)
			errc <- err
		}()
		synctest.Wait()
		b.SetReadDeadline(time.Unix(1, 0))
		if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("interrupted ReadBatch: %v, want os.ErrDeadlineExceeded", err)
		}
		// A later deadline replaces an earlier one that has not passed.
		b.SetReadDeadline(time.Time{})
		b.SetReadDeadline(time.Now().Add(time.Millisecond))
		b.SetReadDeadline(time.Now().Add(time.Hour))
		send(t, a, addrB, []byte("in time"))
		if n, err := b.ReadBatch(bufs, sizes, addrs); n != 1 || err != nil {
			t.Fatalf("ReadBatch with the deadline moved later = %d, %v", n, err)
		}
	})
}
