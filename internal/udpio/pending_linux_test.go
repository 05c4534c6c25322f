//go:build linux

package udpio

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// TestPending: Pending is false on an empty socket, true once a datagram
// waits (loopback delivers within the send, a deadline bounds the wait
// anyway) and false again once it was read.
func TestPending(t *testing.T) {
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			a, b := listenPath(t, "127.0.0.1:0", p), listenPath(t, "127.0.0.1:0", p)
			if b.Pending() {
				t.Fatal("Pending on a socket nothing was sent to")
			}
			if n, err := a.WriteBatch([][]byte{[]byte("ack")}, []netip.AddrPort{b.LocalAddr()}); n != 1 || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !b.Pending() {
				if time.Now().After(deadline) {
					t.Fatal("Pending still false 5 s after a datagram was sent on loopback")
				}
				runtime.Gosched()
			}
			if got, _ := readN(t, b, 1, 64); string(got[0]) != "ack" {
				t.Fatalf("read %q, want %q", got[0], "ack")
			}
			if b.Pending() {
				t.Fatal("Pending after the only datagram was read")
			}
		})
	}
}

// TestPendingAllocs: Pending allocates nothing (a session asks it on a
// timeout in steady state).
func TestPendingAllocs(t *testing.T) {
	c := listen(t, "127.0.0.1:0", false)
	c.Pending()
	if n := testing.AllocsPerRun(100, func() { c.Pending() }); n != 0 {
		t.Errorf("Pending: %.0f allocations per call, want 0", n)
	}
}
