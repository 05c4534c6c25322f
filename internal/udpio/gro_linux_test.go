package udpio

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// groRun is the datagrams of TestGROSplitsGSORuns: runs that GSO sends as one
// message each (equal sizes to one address, a shorter tail) and singles.
func groRun() [][]byte {
	var out [][]byte
	add := func(size int) {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(len(out)*13 + j)
		}
		binary.BigEndian.PutUint16(b, uint16(len(out)))
		out = append(out, b)
	}
	for i := 0; i < 40; i++ {
		add(1200)
	}
	add(500) // the short tail of the first run
	add(3000)
	for i := 0; i < 20; i++ {
		add(300)
	}
	add(64) // the short tail of the second run
	return out
}

// TestGROSplitsGSORuns sends GSO runs over loopback to a receiver with and
// without UDP_GRO and reads them in batches of several sizes (a batch smaller
// than a run leaves datagrams pending for the next call). Every datagram must
// arrive as its own datagram, byte-exact, in order, from the sender; with GRO
// the kernel must have delivered coalesced messages (GROMessages > 0) and
// fewer receive system calls than datagrams.
func TestGROSplitsGSORuns(t *testing.T) {
	for _, rxPath := range []path{{name: "gro", gro: true}, {name: "nogro", nogro: true}} {
		for _, batch := range []int{1, 3, 64} {
			t.Run(rxPath.name+"/batch"+itoa(batch), func(t *testing.T) {
				tx := listenPath(t, "127.0.0.1:0", path{name: "raw"})
				rx := listenPath(t, "127.0.0.1:0", rxPath)
				if !tx.Stats().GSO {
					t.Skip("kernel without UDP_SEGMENT (GSO): no coalesced runs to receive")
				}
				if !rxPath.nogro && !rx.Stats().GRO {
					t.Skip("kernel without UDP_GRO (setsockopt refused): the receive path copies every datagram (covered by the nogro case)")
				}
				msgs := groRun()
				dst := make([]netip.AddrPort, len(msgs))
				for i := range dst {
					dst[i] = rx.LocalAddr()
				}
				if n, err := tx.WriteBatch(msgs, dst); n != len(msgs) || err != nil {
					t.Fatalf("WriteBatch = %d, %v", n, err)
				}
				if tx.Stats().GSOMessages == 0 {
					t.Skip("the kernel refused every GSO message: nothing coalesced to split")
				}
				rx.SetReadDeadline(time.Now().Add(10 * time.Second))
				bufs := make([][]byte, batch)
				sizes := make([]int, batch)
				addrs := make([]netip.AddrPort, batch)
				var got [][]byte
				for len(got) < len(msgs) {
					for i := range bufs {
						bufs[i] = make([]byte, 4096)
					}
					n, err := rx.ReadBatch(bufs, sizes, addrs)
					if err != nil {
						t.Fatalf("ReadBatch after %d of %d: %v", len(got), len(msgs), err)
					}
					for i := 0; i < n; i++ {
						if addrs[i] != tx.LocalAddr() {
							t.Fatalf("datagram %d from %v, want %v", len(got), addrs[i], tx.LocalAddr())
						}
						got = append(got, bytes.Clone(bufs[i][:sizes[i]]))
					}
				}
				for i := range msgs {
					if !bytes.Equal(got[i], msgs[i]) {
						t.Fatalf("datagram %d: %d bytes, want %d (first bytes %x)", i, len(got[i]), len(msgs[i]), got[i][:min(4, len(got[i]))])
					}
				}
				st := rx.Stats()
				t.Logf("rx stats %+v", st)
				if st.DatagramsRead != uint64(len(msgs)) {
					t.Fatalf("DatagramsRead = %d, want %d", st.DatagramsRead, len(msgs))
				}
				if rxPath.nogro {
					if st.GRO || st.GROMessages != 0 {
						t.Fatalf("GRO off but GRO=%v GROMessages=%d", st.GRO, st.GROMessages)
					}
					return
				}
				if st.GROMessages == 0 {
					t.Fatalf("GRO on and %d GSO messages sent, but no coalesced message received", tx.Stats().GSOMessages)
				}
				if st.ReadSyscalls >= st.DatagramsRead {
					t.Fatalf("ReadSyscalls = %d for %d datagrams: coalesced runs should take fewer", st.ReadSyscalls, st.DatagramsRead)
				}
			})
		}
	}
}

// TestGROLendsMemory checks the lending contract: with GRO, ReadBatch leaves
// the caller's buffer alone and points bufs[i] at a slice whose length and
// capacity are the datagram's size (an append cannot reach the next datagram).
func TestGROLendsMemory(t *testing.T) {
	tx, rx := listen(t, "127.0.0.1:0", false), listenPath(t, "127.0.0.1:0", path{name: "gro", gro: true})
	if !rx.Stats().GRO {
		t.Skip("kernel without UDP_GRO: ReadBatch copies into the caller's buffers")
	}
	msgs := [][]byte{bytes.Repeat([]byte{1}, 1000), bytes.Repeat([]byte{2}, 1000)}
	dst := []netip.AddrPort{rx.LocalAddr(), rx.LocalAddr()}
	if _, err := tx.WriteBatch(msgs, dst); err != nil {
		t.Fatal(err)
	}
	own := [][]byte{make([]byte, 2000), make([]byte, 2000)}
	bufs := []([]byte){own[0], own[1]}
	sizes := make([]int, 2)
	addrs := make([]netip.AddrPort, 2)
	rx.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got := 0; got < 2; {
		n, err := rx.ReadBatch(bufs[got:], sizes[got:], addrs[got:])
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	for i := range bufs {
		if &bufs[i][0] == &own[i][0] || len(bufs[i]) != 1000 || cap(bufs[i]) != 1000 || !bytes.Equal(bufs[i], msgs[i]) {
			t.Fatalf("datagram %d: len %d cap %d, caller's buffer reused=%v", i, len(bufs[i]), cap(bufs[i]), &bufs[i][0] == &own[i][0])
		}
		if !bytes.Equal(own[i], make([]byte, 2000)) {
			t.Fatalf("caller's buffer %d written", i)
		}
	}
}

// cmsg builds one control message with a 4-byte payload.
func cmsg(level, typ int32, v uint32) []byte {
	b := make([]byte, unix.CmsgSpace(4))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[unix.CmsgLen(0):], v)
	return b
}

func TestGROSegment(t *testing.T) {
	gro := cmsg(unix.SOL_UDP, unix.UDP_GRO, 1452)
	other := cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, 7)
	bad := cmsg(unix.SOL_UDP, unix.UDP_GRO, 9)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).SetLen(3) // shorter than a header
	for _, tc := range []struct {
		name string
		oob  []byte
		want int
	}{
		{"empty", nil, 0},
		{"gro", gro, 1452},
		{"other then gro", append(append([]byte{}, other...), gro...), 1452},
		{"other only", other, 0},
		{"bad length", bad, 0},
		{"truncated header", gro[:unix.SizeofCmsghdr-1], 0},
		{"truncated payload", gro[:unix.CmsgLen(2)], 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := groSegment(tc.oob); got != tc.want {
				t.Fatalf("groSegment = %d, want %d", got, tc.want)
			}
		})
	}
}

// FuzzGROSegment feeds arbitrary control buffers to the UDP_GRO parser: it
// must not panic, and a buffer that starts with a valid UDP_GRO message must
// yield its value.
func FuzzGROSegment(f *testing.F) {
	f.Add(cmsg(unix.SOL_UDP, unix.UDP_GRO, 1200))
	f.Add(append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, 1), cmsg(unix.SOL_UDP, unix.UDP_GRO, 65000)...))
	f.Fuzz(func(t *testing.T, oob []byte) {
		// The parser reads headers in place; give it aligned memory as the kernel does.
		a := make([]uint64, (len(oob)+7)/8)
		buf := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(a))), len(a)*8)[:len(oob)]
		copy(buf, oob)
		got := groSegment(buf)
		if len(buf) >= unix.CmsgLen(4) {
			h := (*unix.Cmsghdr)(unsafe.Pointer(&buf[0]))
			if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && int(h.Len) >= unix.CmsgLen(4) && int(h.Len) <= len(buf) {
				if want := int(binary.NativeEndian.Uint32(buf[unix.CmsgLen(0):])); got != want {
					t.Fatalf("groSegment = %d, want %d", got, want)
				}
			}
		}
	})
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestListenReusePort opens two sockets on one port and sends from 32 client
// sockets, three datagrams each: every datagram must reach one of the two,
// all of a client's on the same socket (the kernel hashes the 4-tuple), and
// both sockets must get some clients (all 32 on one has odds 2^-31).
func TestListenReusePort(t *testing.T) {
	conns, err := ListenReusePort("127.0.0.1:0", 2)
	if err != nil {
		t.Skipf("SO_REUSEPORT not available here: %v", err)
	}
	for _, c := range conns {
		t.Cleanup(func() { c.Close() })
	}
	if conns[0].LocalAddr() != conns[1].LocalAddr() {
		t.Fatalf("sockets on %v and %v, want one address", conns[0].LocalAddr(), conns[1].LocalAddr())
	}
	const clients, each = 32, 3
	var cl []*Conn
	for i := 0; i < clients; i++ {
		c := listen(t, "127.0.0.1:0", false)
		cl = append(cl, c)
		for k := 0; k < each; k++ {
			if _, err := c.WriteBatch([][]byte{{byte(i), byte(k)}}, []netip.AddrPort{conns[0].LocalAddr()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	owner := map[netip.AddrPort]int{}
	perSocket := make([]int, 2)
	total := 0
	results := make(chan [2]any, clients*each)
	for i, c := range conns {
		go func() {
			bufs := [][]byte{make([]byte, 64)}
			sizes, addrs := make([]int, 1), make([]netip.AddrPort, 1)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				n, err := c.ReadBatch(bufs, sizes, addrs)
				if err != nil {
					return
				}
				for j := 0; j < n; j++ {
					results <- [2]any{i, addrs[j]}
				}
			}
		}()
	}
	for total < clients*each {
		select {
		case r := <-results:
			sock, from := r[0].(int), r[1].(netip.AddrPort)
			if o, ok := owner[from]; ok && o != sock {
				t.Fatalf("client %v reached socket %d and socket %d", from, o, sock)
			}
			if _, ok := owner[from]; !ok {
				perSocket[sock]++
			}
			owner[from] = sock
			total++
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of %d datagrams", total, clients*each)
		}
	}
	t.Logf("clients per socket: %v", perSocket)
	if perSocket[0] == 0 || perSocket[1] == 0 {
		t.Fatalf("clients per socket %v: the kernel did not spread them", perSocket)
	}
	for _, c := range cl {
		if _, ok := owner[c.LocalAddr()]; !ok {
			t.Fatalf("nothing from client %v", c.LocalAddr())
		}
	}
}

// TestGROAutoSwitch: a fresh Conn receives into the caller's buffers (no
// slots allocated) until a read returns a bulk batch; then GRO is on, later
// GSO runs arrive coalesced and are split, and no datagram is lost or
// damaged across the switch.
func TestGROAutoSwitch(t *testing.T) {
	tx, rx := listen(t, "127.0.0.1:0", false), listen(t, "127.0.0.1:0", false)
	if !rx.raw.groAvailable() || !tx.Stats().GSO {
		t.Skip("kernel without UDP_GRO or UDP_SEGMENT: nothing to switch on")
	}
	send := func(n, size int, tag byte) [][]byte {
		msgs := make([][]byte, n)
		dst := make([]netip.AddrPort, n)
		for i := range msgs {
			msgs[i] = bytes.Repeat([]byte{tag + byte(i)}, size)
			dst[i] = rx.LocalAddr()
		}
		if k, err := tx.WriteBatch(msgs, dst); k != n || err != nil {
			t.Fatalf("WriteBatch = %d, %v", k, err)
		}
		return msgs
	}
	check := func(stage string, want [][]byte) {
		got, _ := readN(t, rx, len(want), 2048)
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: datagram %d: %d bytes, want %d", stage, i, len(got[i]), len(want[i]))
			}
		}
	}
	check("request/response", send(1, 100, 1))
	check("request/response", send(1, 100, 2))
	if st := rx.Stats(); st.GRO || len(rx.raw.gr.mem) != 0 {
		t.Fatalf("GRO on (%v) or slots allocated (%d bytes) after single datagrams", st.GRO, len(rx.raw.gr.mem))
	}
	// A bulk batch (the kernel segments it: GRO is still off) switches GRO
	// on once one read returns 8 or more; the reader may in principle
	// overtake the kernel and see fewer, so allow a few batches.
	for i := 0; !rx.Stats().GRO; i++ {
		if i == 5 {
			t.Fatalf("GRO still off after %d bulk batches of 32 datagrams: %+v", i, rx.Stats())
		}
		check("bulk batch", send(32, 1200, 10))
	}
	check("coalesced", send(40, 1200, 100))
	if st := rx.Stats(); st.GROMessages == 0 {
		t.Fatalf("no coalesced message after the switch: %+v", st)
	}
}

func TestBulkRun(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1")
	b := netip.MustParseAddrPort("127.0.0.1:2")
	rep := func(n, size int, addr netip.AddrPort) ([]int, []netip.AddrPort) {
		s, ad := make([]int, n), make([]netip.AddrPort, n)
		for i := range s {
			s[i], ad[i] = size, addr
		}
		return s, ad
	}
	mixed := func() ([]int, []netip.AddrPort) { // a handshake burst: many peers
		s, ad := make([]int, 20), make([]netip.AddrPort, 20)
		for i := range s {
			s[i], ad[i] = 1200, netip.AddrPortFrom(a.Addr(), uint16(1000+i))
		}
		return s, ad
	}
	sizesVaried := func() ([]int, []netip.AddrPort) {
		s, ad := rep(20, 0, a)
		for i := range s {
			s[i] = 100 + i
		}
		return s, ad
	}
	interrupted := func() ([]int, []netip.AddrPort) {
		s, ad := rep(14, 1452, a)
		ad[7] = b
		return s, ad
	}
	for _, tc := range []struct {
		name string
		in   func() ([]int, []netip.AddrPort)
		want bool
	}{
		{"run of 8", func() ([]int, []netip.AddrPort) { return rep(8, 1452, a) }, true},
		{"run of 7", func() ([]int, []netip.AddrPort) { return rep(7, 1452, a) }, false},
		{"many peers", mixed, false},
		{"sizes vary", sizesVaried, false},
		{"interrupted by another peer", interrupted, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ad := tc.in()
			if got := bulkRun(s, ad); got != tc.want {
				t.Fatalf("bulkRun = %v, want %v", got, tc.want)
			}
		})
	}
}
