//go:build linux

package udpio

import (
	"bytes"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// wokenRead runs a ReadBatch on r into bufs, sends "wake" from w to r only
// once that read has found the socket empty (the read state's empties
// counter), and checks that the read returned that datagram, from w.
func wokenRead(t *testing.T, w, r *Conn, bufs [][]byte, sizes []int, addrs []netip.AddrPort) {
	t.Helper()
	empties := r.raw.r.empties.Load()
	done := make(chan error, 1)
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, err := r.ReadBatch(bufs, sizes, addrs)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for r.raw.r.empties.Load() == empties {
		if time.Now().After(deadline) {
			t.Fatal("the reader never found the socket empty")
		}
		runtime.Gosched()
	}
	if _, err := w.WriteBatch([][]byte{[]byte("wake")}, []netip.AddrPort{r.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if string(bufs[0][:sizes[0]]) != "wake" || addrs[0] != w.LocalAddr() {
		t.Fatalf("woken read: %q from %v, want \"wake\" from %v", bufs[0][:sizes[0]], addrs[0], w.LocalAddr())
	}
}

// TestSingleDatagramCalls: a batch of one datagram is sent with sendto; a
// read that finds the socket empty takes the datagram that wakes it with
// recvfrom, and so does the read after it; a read whose recvfrom finds a
// datagram already queued (a burst) hands the next read back to recvmmsg,
// which takes the rest of the burst at once.
func TestSingleDatagramCalls(t *testing.T) {
	a, b := listenPath(t, "127.0.0.1:0", path{nogro: true}), listenPath(t, "127.0.0.1:0", path{nogro: true})
	if a.raw == nil {
		t.Skip("raw path only on Linux")
	}
	to := []netip.AddrPort{b.LocalAddr()}
	if _, err := a.WriteBatch([][]byte{[]byte("one")}, to); err != nil {
		t.Fatal(err)
	}
	if got := a.Stats().SingleSyscalls; got != 1 {
		t.Fatalf("after a WriteBatch of one: SingleSyscalls = %d, want 1 (sendto)", got)
	}
	// A run of three is one sendmmsg (GSO or not), no single call.
	if _, err := a.WriteBatch(payloads(3, 20, 1), []netip.AddrPort{to[0], to[0], to[0]}); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.SingleSyscalls != 1 || st.WriteSyscalls != 2 {
		t.Fatalf("after a WriteBatch of three: SingleSyscalls = %d, WriteSyscalls = %d; want 1 and 2", st.SingleSyscalls, st.WriteSyscalls)
	}
	// Queued datagrams, nothing waited for: one recvmmsg takes all four.
	got, from := readN(t, b, 4, 64)
	if string(got[0]) != "one" || from[0] != a.LocalAddr() {
		t.Fatalf("first datagram %q from %v, want \"one\" from %v", got[0], from[0], a.LocalAddr())
	}
	if st := b.Stats(); st.ReadSyscalls != 1 || st.SingleSyscalls != 0 {
		t.Fatalf("reading a queued burst: ReadSyscalls = %d, SingleSyscalls = %d; want 1 and 0", st.ReadSyscalls, st.SingleSyscalls)
	}

	// A read that waits.
	bufs := [][]byte{make([]byte, 64), make([]byte, 64)}
	sizes, addrs := make([]int, 2), make([]netip.AddrPort, 2)
	wokenRead(t, a, b, bufs, sizes, addrs)
	if st := b.Stats(); st.SingleSyscalls != 1 || !b.raw.r.one {
		t.Fatalf("after the woken read: SingleSyscalls = %d, next read single = %v; want 1 and true", st.SingleSyscalls, b.raw.r.one)
	}
	// The next read starts with recvfrom; it finds a burst of three queued,
	// takes one, and the read after takes the other two with one recvmmsg.
	if _, err := a.WriteBatch(payloads(3, 20, 2), []netip.AddrPort{to[0], to[0], to[0]}); err != nil {
		t.Fatal(err)
	}
	// New buffers, so that the single read must point its header at them
	// (and the vector read after it every header).
	want := payloads(3, 20, 2)
	bufs = [][]byte{make([]byte, 64), make([]byte, 64)}
	n, err := b.ReadBatch(bufs, sizes, addrs)
	if n != 1 || err != nil || b.Stats().SingleSyscalls != 2 || b.raw.r.one {
		t.Fatalf("read into a burst = %d, %v; SingleSyscalls %d, next single %v; want 1, nil, 2, false", n, err, b.Stats().SingleSyscalls, b.raw.r.one)
	}
	if !bytes.Equal(bufs[0][:sizes[0]], want[0]) {
		t.Fatalf("read into a burst: %x, want %x", bufs[0][:sizes[0]], want[0])
	}
	n, err = b.ReadBatch(bufs, sizes, addrs)
	if n != 2 || err != nil || b.Stats().SingleSyscalls != 2 {
		t.Fatalf("read of the burst's rest = %d, %v; SingleSyscalls %d; want 2, nil, 2", n, err, b.Stats().SingleSyscalls)
	}
	for i := 0; i < 2; i++ {
		if !bytes.Equal(bufs[i][:sizes[i]], want[i+1]) {
			t.Fatalf("rest of the burst, datagram %d: %x, want %x", i, bufs[i][:sizes[i]], want[i+1])
		}
	}
}

// TestGROWokenReadTakesOneMessage: with GRO on, a read that found the socket
// empty takes the message that wakes it with recvmsg (which returns the
// segment size that recvfrom could not), and the next read starts with
// recvmsg too: a coalesced run queued by then still arrives whole, split
// into its datagrams, from that one call.
func TestGROWokenReadTakesOneMessage(t *testing.T) {
	a := listenPath(t, "127.0.0.1:0", path{})
	b := listenPath(t, "127.0.0.1:0", path{gro: true})
	if !b.Stats().GRO {
		t.Skip("no UDP_GRO here")
	}
	to := b.LocalAddr()
	bufs := make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	sizes, addrs := make([]int, 64), make([]netip.AddrPort, 64)
	wokenRead(t, a, b, bufs, sizes, addrs)
	if st := b.Stats(); st.SingleSyscalls != 1 || !b.raw.r.one {
		t.Fatalf("after the woken read: SingleSyscalls = %d, next read single = %v; want 1 and true", st.SingleSyscalls, b.raw.r.one)
	}
	run := make([][]byte, 8)
	dst := make([]netip.AddrPort, 8)
	for i := range run {
		run[i] = bytes.Repeat([]byte{byte(i)}, 1000)
		dst[i] = to
	}
	if _, err := a.WriteBatch(run, dst); err != nil {
		t.Fatal(err)
	}
	got, _ := readN(t, b, 8, 1500)
	for i, g := range got {
		if !bytes.Equal(g, run[i]) {
			t.Fatalf("datagram %d of the run: %d bytes, want %d of %d", i, len(g), len(run[i]), i)
		}
	}
	if st := b.Stats(); st.SingleSyscalls != 2 || st.GROMessages == 0 {
		t.Fatalf("after the run: SingleSyscalls = %d, GROMessages = %d; want 2 (the run in one recvmsg) and > 0", st.SingleSyscalls, st.GROMessages)
	}
}
