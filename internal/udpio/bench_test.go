package udpio

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPingPong measures one loopback round trip of a 64-byte datagram
// (WriteBatch of 1, echo, ReadBatch of 1): ns/op is the RTT floor.
func BenchmarkPingPong(b *testing.B) {
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			cli, srv := listenPath(b, "127.0.0.1:0", p), listenPath(b, "127.0.0.1:0", p)
			pingPong64(b, cli, srv, nil)
		})
	}
}

// pingPong64 echoes every datagram srv receives and times 64-byte round
// trips from cli (the benchmark loop). around, if set, runs just before and
// just after the loop (the CPU-time metric of BenchmarkPingPongSocket).
func pingPong64(b *testing.B, cli, srv *Conn, around func(after bool)) {
	go func() {
		bufs := [][]byte{make([]byte, 1500)}
		sizes := make([]int, 1)
		addrs := make([]netip.AddrPort, 1)
		for {
			n, err := srv.ReadBatch(bufs, sizes, addrs)
			if err != nil {
				return
			}
			for i := 0; i < n; i++ {
				srv.WriteBatch([][]byte{bufs[i][:sizes[i]]}, addrs[i:i+1])
			}
		}
	}()
	out := [][]byte{make([]byte, 64)}
	dst := []netip.AddrPort{srv.LocalAddr()}
	in := [][]byte{make([]byte, 1500)}
	sizes := make([]int, 1)
	addrs := make([]netip.AddrPort, 1)
	b.ReportAllocs()
	b.ResetTimer()
	if around != nil {
		around(false)
	}
	for b.Loop() {
		if _, err := cli.WriteBatch(out, dst); err != nil {
			b.Fatal(err)
		}
		if _, err := cli.ReadBatch(in, sizes, addrs); err != nil {
			b.Fatal(err)
		}
	}
	if around != nil {
		around(true)
	}
}

// BenchmarkOneWayBatch64 measures one-way throughput of 1200-byte datagrams
// written 64 per WriteBatch with a receiver reading 64 per ReadBatch. The
// sender keeps at most 2048 datagrams in flight so the receive buffer does
// not overflow; lost/op reports any datagram the kernel dropped anyway.
func BenchmarkOneWayBatch64(b *testing.B) {
	const batch, size, window = 64, 1200, 2048
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			tx, rx := listenPath(b, "127.0.0.1:0", p), listenPath(b, "127.0.0.1:0", p)
			var received atomic.Int64
			progress := make(chan struct{}, 1)
			done := make(chan struct{})
			go func() {
				defer close(done)
				bufs := make([][]byte, batch)
				for i := range bufs {
					bufs[i] = make([]byte, 2048)
				}
				sizes := make([]int, batch)
				addrs := make([]netip.AddrPort, batch)
				for {
					n, err := rx.ReadBatch(bufs, sizes, addrs)
					if err != nil {
						return
					}
					received.Add(int64(n))
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}()
			bufs := make([][]byte, batch)
			dst := make([]netip.AddrPort, batch)
			for i := range bufs {
				bufs[i] = make([]byte, size)
				dst[i] = rx.LocalAddr()
			}
			b.SetBytes(size * batch)
			b.ReportAllocs()
			b.ResetTimer()
			var sent int64
			for b.Loop() {
				for sent-received.Load() > window {
					select {
					case <-progress:
					case <-time.After(100 * time.Millisecond): // a kernel drop: stop waiting for it
						sent = received.Load()
					}
				}
				n, err := tx.WriteBatch(bufs, dst)
				if err != nil {
					b.Fatal(err)
				}
				sent += int64(n)
			}
			b.StopTimer()
			rx.uc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			<-done
			st := tx.Stats()
			b.ReportMetric(float64(st.DatagramsWritten)/float64(st.WriteSyscalls), "dgrams/syscall")
			b.ReportMetric(float64(int64(st.DatagramsWritten)-received.Load())/float64(b.N), "lost/op")
		})
	}
}
