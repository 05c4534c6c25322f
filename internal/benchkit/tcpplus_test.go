package benchkit

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach it.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// The buffered conn sends 64 KiB per write when the writer is ahead, sends
// what it holds before it reads, and at the latest after the flush delay.
func TestBufferedConnBatchesWrites(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	cc := &countingConn{Conn: a}
	bc := newBufferedConnDelay(cc, time.Hour) // no timer flush while counting
	defer bc.Close()
	got := make(chan int64, 1)
	go func() {
		n, _ := io.CopyN(io.Discard, b, 256*1024)
		b.Write([]byte("k")) // answer once all arrived
		got <- n
	}()
	msg := make([]byte, 1024)
	for range 256 {
		if _, err := bc.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	// 256 KiB in 1 KiB writes: 4 full buffers; the Read flushes nothing
	// more (the last write filled the fourth).
	var k [1]byte
	if _, err := bc.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 256*1024 {
		t.Fatalf("peer received %d bytes, want %d", n, 256*1024)
	}
	if w := cc.writes.Load(); w != 4 {
		t.Fatalf("%d socket writes for 256 writes of 1 KiB, want 4", w)
	}
	// A small write with no read after it goes out by the timer.
	bc.delay = BufferedFlushDelay
	arrived := make(chan struct{})
	go func() {
		var buf [3]byte
		io.ReadFull(b, buf[:])
		close(arrived)
	}()
	bc.Write([]byte("abc"))
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("a buffered write was not flushed by the timer within 10s")
	}
}

// The TCP variants carry the bench protocol both ways; tcp+tls and
// tcp+tls-buffered speak TLS 1.3.
func TestTCPVariants(t *testing.T) {
	for _, tr := range []Transport{TCPBuffered{}, TCPTLS{}, TCPTLSBuffered{}} {
		t.Run(tr.Name(), func(t *testing.T) {
			o := countOpts(1024, 300)
			r, err := RunRTT(context.Background(), tr, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Received != 300 || r.P50us <= 0 {
				t.Fatalf("rtt: %d round trips, p50 %.1f µs", r.Received, r.P50us)
			}
		})
	}
	ln, err := TCPTLS{}.Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := TCPTLS{}.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if v := c.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("TLS version %#x, want 1.3", v)
	}
	c.Close()
	wg.Wait()
}

// The syscall counter counts: a TCP round trip costs at least a write and a
// read on each end.
func TestSyscallsPerMessage(t *testing.T) {
	if _, err := ProcessSyscalls(); err != nil {
		t.Skipf("no syscall counter: %v", err)
	}
	for _, tr := range []Named{TCP{}, UDP{}, &Raptor{}} {
		t.Run(tr.Name(), func(t *testing.T) {
			r, err := RunRTT(context.Background(), tr, countOpts(64, 500))
			if err != nil {
				t.Fatal(err)
			}
			if r.SyscallsPerMsg < 4 || r.SyscallsPerMsg > 100 {
				t.Fatalf("%.2f syscalls per round trip, want [4, 100]", r.SyscallsPerMsg)
			}
			t.Logf("%s: %.2f syscalls per round trip", tr.Name(), r.SyscallsPerMsg)
		})
	}
	// A buffered writer makes far fewer calls per message than plain TCP.
	o := countOpts(1024, 20000)
	plain, err := RunThroughput(context.Background(), TCP{}, o)
	if err != nil {
		t.Fatal(err)
	}
	buffered, err := RunThroughput(context.Background(), TCPBuffered{}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !(buffered.SyscallsPerMsg < plain.SyscallsPerMsg/2) {
		t.Fatalf("1 KiB one-way: %.2f syscalls per message buffered, %.2f plain; want less than half", buffered.SyscallsPerMsg, plain.SyscallsPerMsg)
	}
	t.Logf("1 KiB one-way: %.3f syscalls per message buffered, %.3f plain", buffered.SyscallsPerMsg, plain.SyscallsPerMsg)
}
