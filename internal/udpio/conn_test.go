package udpio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
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

// path is one way through a Conn: raw mmsg with GRO forced on, off, or
// switched on automatically (the default), with or without GSO, every read
// one datagram with recvfrom, or x/net.
type path struct {
	name   string
	xnet   bool
	nogso  bool
	nogro  bool
	gro    bool // force GRO on from the start (where the kernel has it)
	single bool // every read takes one datagram with recvfrom (Linux)
}

var paths = []path{
	{name: "raw", gro: true},
	{name: "raw-nogro", nogro: true},
	{name: "raw-nogso", nogso: true},
	{name: "raw-single", nogro: true, single: true},
	{name: "raw-gro-single", gro: true, single: true},
	{name: "xnet", xnet: true, nogso: true, nogro: true},
}

func listen(tb testing.TB, addr string, xnet bool) *Conn {
	return listenPath(tb, addr, path{xnet: xnet})
}

func listenPath(tb testing.TB, addr string, p path) *Conn {
	xnet := p.xnet
	tb.Helper()
	c, err := Listen(addr)
	if err != nil {
		if addr[0] == '[' {
			tb.Skipf("IPv6 loopback ::1 not usable here (%v); skipping IPv6 test", err)
		}
		tb.Fatal(err)
	}
	if xnet {
		c.useXNet = true
	} else if c.useXNet {
		tb.Skip("raw mmsg path only on Linux")
	}
	if p.nogso && c.raw != nil {
		c.raw.setGSO(false)
	}
	if p.single && c.raw != nil {
		c.raw.setSingleReads(true)
	}
	switch {
	case p.nogro || xnet:
		if err := c.raw.setGROMode(c.rc, false); c.raw != nil && err != nil {
			tb.Fatal(err)
		}
	case p.gro && c.raw.groAvailable():
		if err := c.raw.setGROMode(c.rc, true); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// readN reads exactly want datagrams (or fails after a bounded time).
func readN(tb testing.TB, c *Conn, want, size int) ([][]byte, []netip.AddrPort) {
	tb.Helper()
	c.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.uc.SetReadDeadline(time.Time{})
	var got [][]byte
	var from []netip.AddrPort
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	sizes := make([]int, 64)
	addrs := make([]netip.AddrPort, 64)
	for len(got) < want {
		n, err := c.ReadBatch(bufs, sizes, addrs)
		if err != nil {
			tb.Fatalf("ReadBatch after %d of %d: %v", len(got), want, err)
		}
		for i := 0; i < n; i++ {
			got = append(got, bytes.Clone(bufs[i][:sizes[i]]))
			from = append(from, addrs[i])
		}
	}
	return got, from
}

func payloads(n, size int, tag byte) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := make([]byte, size+i) // distinct lengths
		for j := range b {
			b[j] = byte(i*7+j) ^ tag
		}
		binary.BigEndian.PutUint16(b, uint16(i))
		out[i] = b
	}
	return out
}

func TestBatch64(t *testing.T) {
	for _, fam := range []string{"127.0.0.1:0", "[::1]:0"} {
		for _, p := range paths {
			t.Run(fam+"/"+p.name, func(t *testing.T) {
				a, b := listenPath(t, fam, p), listenPath(t, fam, p)
				for _, dir := range []struct{ from, to *Conn }{{a, b}, {b, a}} {
					msgs := payloads(64, 100, byte(dir.from.laddr.Port()))
					dst := make([]netip.AddrPort, len(msgs))
					for i := range dst {
						dst[i] = dir.to.LocalAddr()
					}
					n, err := dir.from.WriteBatch(msgs, dst)
					if n != 64 || err != nil {
						t.Fatalf("WriteBatch = %d, %v", n, err)
					}
					got, from := readN(t, dir.to, 64, 2048)
					for i := range got {
						if !bytes.Equal(got[i], msgs[i]) {
							t.Fatalf("datagram %d differs: got %d bytes, want %d", i, len(got[i]), len(msgs[i]))
						}
						if from[i] != dir.from.LocalAddr() {
							t.Fatalf("datagram %d from %v, want %v", i, from[i], dir.from.LocalAddr())
						}
					}
				}
				st := a.Stats()
				if st.DatagramsWritten != 64 || st.DatagramsRead != 64 || st.WriteSyscalls == 0 || st.ReadSyscalls == 0 {
					t.Fatalf("stats %+v", st)
				}
				t.Logf("stats %+v", st)
			})
		}
	}
}

// TestTruncation reads a datagram into a buffer too small for it: copied into
// the caller's buffer it is truncated and counted; lent from GRO slots it
// arrives whole and the caller's buffer is left alone.
func TestTruncation(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			a, b := listenPath(t, "127.0.0.1:0", p), listenPath(t, "127.0.0.1:0", p)
			msg := bytes.Repeat([]byte{0xAB}, 100)
			if _, err := a.WriteBatch([][]byte{msg}, []netip.AddrPort{b.LocalAddr()}); err != nil {
				t.Fatal(err)
			}
			own := make([]byte, 10)
			bufs := [][]byte{own}
			sizes := []int{0}
			addrs := []netip.AddrPort{{}}
			n, err := b.ReadBatch(bufs, sizes, addrs)
			if b.Stats().GRO {
				if n != 1 || err != nil || sizes[0] != 100 || !bytes.Equal(bufs[0][:sizes[0]], msg) || !bytes.Equal(own, make([]byte, 10)) {
					t.Fatalf("GRO ReadBatch = %d, %v, size %d; caller buffer %x", n, err, sizes[0], own)
				}
				return
			}
			if n != 1 || err != nil || sizes[0] != 10 || !bytes.Equal(bufs[0], msg[:10]) {
				t.Fatalf("ReadBatch = %d, %v, size %d", n, err, sizes[0])
			}
			if got := b.Stats().Truncated; got != 1 {
				t.Fatalf("Truncated = %d, want 1", got)
			}
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			c := listenPath(t, "127.0.0.1:0", p)
			done := make(chan error, 1)
			go func() {
				bufs := [][]byte{make([]byte, 64)}
				_, err := c.ReadBatch(bufs, make([]int, 1), make([]netip.AddrPort, 1))
				done <- err
			}()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			select {
			case err := <-done:
				var oe *OpError
				if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) {
					t.Fatalf("ReadBatch after Close: %v, want *OpError wrapping net.ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReadBatch still blocked 10s after Close")
			}
			_, err := c.WriteBatch([][]byte{{1}}, []netip.AddrPort{c.LocalAddr()})
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteBatch after Close: %v", err)
			}
		})
	}
}

func TestConcurrentWriters(t *testing.T) {
	const writers, batches, per = 4, 100, 8
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			dst := listenPath(t, "127.0.0.1:0", p)
			src := listenPath(t, "127.0.0.1:0", p)
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					bufs := make([][]byte, per)
					addrs := make([]netip.AddrPort, per)
					for i := range bufs {
						bufs[i] = make([]byte, 32)
						addrs[i] = dst.LocalAddr()
					}
					for k := 0; k < batches; k++ {
						for i := range bufs {
							binary.BigEndian.PutUint32(bufs[i], uint32(w))
							binary.BigEndian.PutUint32(bufs[i][4:], uint32(k*per+i))
						}
						if n, err := src.WriteBatch(bufs, addrs); n != per || err != nil {
							t.Errorf("writer %d: WriteBatch = %d, %v", w, n, err)
							return
						}
					}
				}()
			}
			got, _ := readN(t, dst, writers*batches*per, 64)
			wg.Wait()
			seen := make(map[uint64]bool)
			for _, g := range got {
				if len(g) != 32 {
					t.Fatalf("len %d", len(g))
				}
				k := binary.BigEndian.Uint64(g)
				if seen[k] {
					t.Fatalf("duplicate %x", k)
				}
				seen[k] = true
			}
			if st := src.Stats(); st.DatagramsWritten != writers*batches*per {
				t.Fatalf("DatagramsWritten = %d", st.DatagramsWritten)
			}
		})
	}
}

func TestWriteBadAddress(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			a, b := listenPath(t, "127.0.0.1:0", p), listenPath(t, "127.0.0.1:0", p)
			bad := netip.MustParseAddrPort("[2001:db8::1]:9")
			n, err := a.WriteBatch([][]byte{{1}, {2}, {3}}, []netip.AddrPort{b.LocalAddr(), bad, b.LocalAddr()})
			var oe *OpError
			if n != 1 || !errors.As(err, &oe) || oe.Index != 1 || oe.Addr != bad {
				t.Fatalf("WriteBatch = %d, %v; want 1 and *OpError at index 1 naming %v", n, err, bad)
			}
			t.Logf("error text: %v", err)
			if got, _ := readN(t, b, 1, 16); got[0][0] != 1 {
				t.Fatalf("got %v", got[0])
			}
			if a.Stats().SendErrors != 1 {
				t.Fatalf("SendErrors = %d", a.Stats().SendErrors)
			}
		})
	}
}

func TestBufferSizes(t *testing.T) {
	c := listen(t, "127.0.0.1:0", false)
	st := c.Stats()
	t.Logf("effective SO_RCVBUF=%d SO_SNDBUF=%d (requested %d)", st.RecvBuffer, st.SendBuffer, SocketBufferSize)
	if st.RecvBuffer <= 0 || st.SendBuffer <= 0 {
		t.Fatalf("buffer sizes not reported: %+v", st)
	}
}

func TestAllocs(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			a, b := listenPath(t, "127.0.0.1:0", p), listenPath(t, "127.0.0.1:0", p)
			const k = 16
			out := payloads(k, 200, 1)
			dst := make([]netip.AddrPort, k)
			for i := range dst {
				dst[i] = b.LocalAddr()
			}
			bufs := make([][]byte, k)
			for i := range bufs {
				bufs[i] = make([]byte, 1500)
			}
			sizes := make([]int, k)
			addrs := make([]netip.AddrPort, k)
			var werr, rerr error
			w := testing.AllocsPerRun(200, func() {
				if _, err := a.WriteBatch(out, dst); err != nil {
					werr = err
				}
				// Drain what was sent so the receive queue stays short.
				for got := 0; got < k; {
					n, err := b.ReadBatch(bufs, sizes, addrs)
					if err != nil {
						rerr = err
						return
					}
					got += n
				}
			})
			if werr != nil || rerr != nil {
				t.Fatal(werr, rerr)
			}
			t.Logf("%s: %.1f allocations per write+read round of %d datagrams", p.name, w, k)
			if !p.xnet && w != 0 {
				t.Fatalf("raw path: %.1f allocations per round, want 0", w)
			}
			if p.xnet {
				// x/net writes are allocation-free; its ReadBatch allocates the source address.
				wa := testing.AllocsPerRun(200, func() { a.WriteBatch(out[:1], dst[:1]); b.ReadBatch(bufs[:1], sizes, addrs) })
				t.Logf("xnet: %.1f allocations per 1-datagram write+read", wa)
			}
		})
	}
}

func TestZeroLengthSlices(t *testing.T) {
	c := listen(t, "127.0.0.1:0", false)
	if n, err := c.ReadBatch(nil, nil, nil); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	if n, err := c.WriteBatch(nil, nil); n != 0 || err != nil {
		t.Fatal(n, err)
	}
	if _, err := c.ReadBatch(make([][]byte, 2), make([]int, 1), make([]netip.AddrPort, 2)); err == nil {
		t.Fatal("short sizes accepted")
	}
}

func ExampleListen() {
	c, err := Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	n, err := c.WriteBatch([][]byte{[]byte("hello")}, []netip.AddrPort{c.LocalAddr()})
	fmt.Println(n, err)
	bufs := [][]byte{make([]byte, 64)}
	sizes := make([]int, 1)
	from := make([]netip.AddrPort, 1)
	n, err = c.ReadBatch(bufs, sizes, from)
	// The datagram is bufs[0][:sizes[0]]: with UDP GRO, bufs[0] now points
	// into the Conn's receive memory rather than at the buffer passed in.
	fmt.Println(n, err, string(bufs[0][:sizes[0]]), from[0] == c.LocalAddr())
	// Output:
	// 1 <nil>
	// 1 <nil> hello true
}

func TestReadDeadline(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			c := listenPath(t, "127.0.0.1:0", p)
			c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			_, err := c.ReadBatch([][]byte{make([]byte, 8)}, make([]int, 1), make([]netip.AddrPort, 1))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("ReadBatch past deadline: %v", err)
			}
		})
	}
}

// TestGSORuns sends runs that GSO can coalesce (equal sizes to one address,
// a shorter last one) mixed with runs it cannot (other address, other size),
// and checks every datagram arrives byte-exact and in order.
func TestGSORuns(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			tx := listenPath(t, "127.0.0.1:0", p)
			rx1, rx2 := listen(t, "127.0.0.1:0", false), listen(t, "127.0.0.1:0", false)
			var bufs [][]byte
			var dst []netip.AddrPort
			add := func(to *Conn, size int) {
				b := make([]byte, size)
				for j := range b {
					b[j] = byte(len(bufs)*31 + j)
				}
				bufs = append(bufs, b)
				dst = append(dst, to.LocalAddr())
			}
			for i := 0; i < 100; i++ { // equal sizes to rx1: two GSO messages
				add(rx1, 1200)
			}
			add(rx1, 700) // shorter tail joins the second run
			add(rx2, 1200)
			add(rx2, 1300) // larger: new run
			for i := 0; i < 10; i++ {
				add(rx2, 60)
			}
			n, err := tx.WriteBatch(bufs, dst)
			if n != len(bufs) || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			got1, _ := readN(t, rx1, 101, 2048)
			got2, _ := readN(t, rx2, 12, 2048)
			got := append(got1, got2...)
			for i := range got {
				if !bytes.Equal(got[i], bufs[i]) {
					t.Fatalf("datagram %d: %d bytes, want %d", i, len(got[i]), len(bufs[i]))
				}
			}
			st := tx.Stats()
			t.Logf("stats %+v", st)
			// rx1: 54 (54*1200 <= 65507 < 55*1200) then 46+1 with the short tail;
			// rx2: 1200 alone, 1300 with one 60 as its short tail, then 9*60.
			if st.GSO && st.GSOMessages != 4 {
				t.Fatalf("GSOMessages = %d, want 4", st.GSOMessages)
			}
			if p.name == "raw" && !st.GSO {
				t.Logf("kernel without UDP_SEGMENT: GSO not exercised")
			}
		})
	}
}

// TestReadBatchReusesHeaders: consecutive reads with the same buffers, then
// with other buffers, then with the first ones again, each land in the
// buffers of their call, with their own sizes, sources and truncation (the
// kernel headers kept from one call are reset where the kernel wrote them).
func TestReadBatchReusesHeaders(t *testing.T) {
	a, b := listenPath(t, "127.0.0.1:0", path{nogro: true}), listenPath(t, "127.0.0.1:0", path{nogro: true})
	c := listenPath(t, "127.0.0.1:0", path{nogro: true})
	first := [][]byte{make([]byte, 50), make([]byte, 50)}
	other := [][]byte{make([]byte, 20), make([]byte, 80), make([]byte, 80)}
	for i, tc := range []struct {
		from  *Conn
		bufs  [][]byte
		size  int
		trunc bool
	}{
		{a, first, 40, false},
		{c, first, 70, true}, // truncated to 50
		{a, first, 10, false},
		{c, other, 30, true}, // truncated to 20
		{a, other, 5, false},
		{c, first, 50, false},
		{a, first[:1], 60, true},
	} {
		msg := bytes.Repeat([]byte{byte(i + 1)}, tc.size)
		if _, err := tc.from.WriteBatch([][]byte{msg}, []netip.AddrPort{b.LocalAddr()}); err != nil {
			t.Fatal(err)
		}
		before := b.Stats().Truncated
		sizes := make([]int, len(tc.bufs))
		addrs := make([]netip.AddrPort, len(tc.bufs))
		b.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := b.ReadBatch(tc.bufs, sizes, addrs)
		if err != nil || n != 1 {
			t.Fatalf("read %d: ReadBatch = %d, %v", i, n, err)
		}
		want := min(tc.size, len(tc.bufs[0]))
		if sizes[0] != want || !bytes.Equal(tc.bufs[0][:sizes[0]], msg[:want]) || addrs[0] != tc.from.LocalAddr() {
			t.Errorf("read %d: size %d from %v, %x; want %d from %v", i, sizes[0], addrs[0], tc.bufs[0][:sizes[0]], want, tc.from.LocalAddr())
		}
		if got := b.Stats().Truncated - before; got != map[bool]uint64{false: 0, true: 1}[tc.trunc] {
			t.Errorf("read %d: %d truncated, want truncation %v", i, got, tc.trunc)
		}
	}
}
