//go:build dpdk && linux && cgo

package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/raptormq/raptor/dpdk"
	"github.com/raptormq/raptor/reliable"
)

// TestDPDKVethUDP exchanges datagrams between a DPDK port (net_af_packet on
// a veth end in one namespace) and kernel UDP sockets in another, both
// ways, byte-exact, by stop-and-wait with retransmission; "loss5" drops 5%
// of the frames in each direction with nftables.
func TestDPDKVethUDP(t *testing.T) {
	for _, loss := range []int{0, 5} {
		name := "clean"
		if loss > 0 {
			name = "loss5"
		}
		t.Run(name, func(t *testing.T) {
			v := newDPVeth(t)
			if loss > 0 {
				v.addLoss(t, loss)
			}
			p := v.openDPDK(t, 4000)
			var echo, client *net.UDPConn
			if err := dpInNetns(v.nsK, func() error {
				var err error
				if echo, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.kernelIP, 5000))); err != nil {
					return err
				}
				client, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(v.kernelIP, 5001)))
				return err
			}); err != nil {
				t.Fatalf("kernel sockets in %s: %v", v.nsK, err)
			}
			t.Cleanup(func() { echo.Close(); client.Close() })
			watchdog := time.AfterFunc(3*time.Minute, func() {
				t.Errorf("watchdog: still running after 3 minutes; closing sockets and port")
				echo.Close()
				client.Close()
				p.Close()
			})
			t.Cleanup(func() { watchdog.Stop() })

			retries, kretries := dpUDPExchange(t, p, v.kernelIP, echo, client, 300, func() {
				// Flush the kernel's neighbour cache (it learnt DPDK's MAC from
				// DPDK's ARP request) so that it asks and DPDK must answer.
				dpRun(t, "", "ip", "-n", v.nsK, "neigh", "flush", "dev", v.peer)
			})
			const n = 300
			st := p.Stats()
			t.Logf("kernel->DPDK->kernel: %d round trips, %d retransmissions", n, kretries)
			t.Logf("DPDK port stats: %+v", st)
			if st.ARP.RequestsSent == 0 || st.ARP.RepliesReceived == 0 || st.ARP.RequestsReceived == 0 || st.ARP.RepliesSent == 0 {
				t.Errorf("ARP: %+v; want DPDK's request answered by the kernel and the kernel's answered by DPDK", st.ARP)
			}
			if st.Drops.BadUDPChecksum != 0 || st.Drops.BadIPChecksum != 0 {
				t.Errorf("checksum drops: UDP %d, IP %d; want none", st.Drops.BadUDPChecksum, st.Drops.BadIPChecksum)
			}
			if loss > 0 {
				in, out := v.lossDropped(t)
				t.Logf("nftables dropped %d frames towards the kernel, %d towards DPDK", in, out)
				if in == 0 || out == 0 || retries+kretries == 0 {
					t.Errorf("loss injection had no effect: nft %d/%d, retransmissions %d", in, out, retries+kretries)
				}
			} else if retries+kretries > n/10 {
				// Without loss a retransmission only means an echo took longer
				// than the 40 ms timeout (a loaded CI machine); many mean loss.
				t.Errorf("%d retransmissions in %d round trips without injected loss", retries+kretries, 2*n)
			}
		})
	}
}

// dpUDPExchange exchanges n datagrams each way between DPDK port p and the
// kernel sockets echo (port 5000) and client (port 5001), byte-exact, by
// stop-and-wait with a 40 ms retransmission timeout: DPDK -> kernel echo ->
// DPDK, then (after between) kernel client -> DPDK echo -> kernel. It
// closes p when done and returns the retransmissions of each direction.
func dpUDPExchange(t *testing.T, p *dpdk.Port, kernelIP netip.Addr, echo, client *net.UDPConn, n int, between func()) (retries, kretries int) {
	t.Helper()
	// Kernel echo server.
	go func() {
		b := make([]byte, 2048)
		for {
			n, from, err := echo.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			echo.WriteToUDPAddrPort(b[:n], from)
		}
	}()
	// DPDK reader: echoes what the kernel client sends, passes echo
	// replies to the DPDK-side sender.
	replies := make(chan []byte, 64)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		bufs := make([][]byte, 16)
		for i := range bufs {
			bufs[i] = make([]byte, 2048)
		}
		sizes := make([]int, 16)
		addrs := make([]netip.AddrPort, 16)
		for {
			n, err := p.ReadBatch(bufs, sizes, addrs)
			if err != nil {
				return
			}
			for i := 0; i < n; i++ {
				switch addrs[i].Port() {
				case 5000:
					select {
					case replies <- bytes.Clone(bufs[i][:sizes[i]]):
					default:
					}
				case 5001:
					p.WriteBatch([][]byte{bufs[i][:sizes[i]]}, []netip.AddrPort{addrs[i]})
				}
			}
		}
	}()
	defer func() { p.Close(); <-readerDone }()

	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	const rto = 40 * time.Millisecond
	msg := func(i int) []byte {
		b := make([]byte, 4+(i*131)%1469) // 4..1472 bytes
		binary.BigEndian.PutUint32(b, uint32(i))
		for j := 4; j < len(b); j++ {
			b[j] = byte(r.UintN(256))
		}
		return b
	}
	kernelEcho := netip.AddrPortFrom(kernelIP, 5000)

	// DPDK -> kernel -> DPDK.
	var rtts []time.Duration
	timer := time.NewTimer(time.Hour)
	for i := 0; i < n; i++ {
		m := msg(i)
		tries := 0
	resend:
		tries++
		start := time.Now()
		if _, err := p.WriteBatch([][]byte{m}, []netip.AddrPort{kernelEcho}); err != nil {
			t.Fatalf("WriteBatch %d: %v", i, err)
		}
		timer.Reset(rto)
		for {
			select {
			case got := <-replies:
				if len(got) < 4 || binary.BigEndian.Uint32(got) != uint32(i) {
					continue // a late echo of an earlier retry
				}
				if !bytes.Equal(got, m) {
					t.Fatalf("datagram %d: echo of %d bytes differs from the %d sent", i, len(got), len(m))
				}
				if tries == 1 {
					rtts = append(rtts, time.Since(start))
				}
			case <-timer.C:
				retries++
				if tries > 50 {
					t.Fatalf("datagram %d: no echo after %d tries; stats %+v", i, tries, p.Stats())
				}
				goto resend
			}
			break
		}
	}
	slices.Sort(rtts)
	if len(rtts) > 0 {
		t.Logf("DPDK->kernel->DPDK: %d round trips, %d retransmissions; RTT p50 %v p99 %v max %v",
			n, retries, rtts[len(rtts)/2], rtts[len(rtts)*99/100], rtts[len(rtts)-1])
	}

	// kernel -> DPDK -> kernel.
	if between != nil {
		between()
	}
	dpdkAddr := p.LocalAddr()
	rb := make([]byte, 2048)
	for i := 0; i < n; i++ {
		m := msg(n + i)
		tries := 0
		for {
			tries++
			if _, err := client.WriteToUDPAddrPort(m, dpdkAddr); err != nil {
				t.Fatalf("kernel send %d: %v", i, err)
			}
			client.SetReadDeadline(time.Now().Add(rto))
			var got []byte
			for {
				k, from, err := client.ReadFromUDPAddrPort(rb)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatalf("kernel receive %d: %v", i, err)
				}
				if from != dpdkAddr {
					t.Fatalf("kernel received from %v, want %v", from, dpdkAddr)
				}
				if k >= 4 && binary.BigEndian.Uint32(rb) == uint32(n+i) {
					got = rb[:k]
					break
				}
			}
			if got != nil {
				if !bytes.Equal(got, m) {
					t.Fatalf("datagram %d: DPDK echo of %d bytes differs from the %d sent", i, len(got), len(m))
				}
				break
			}
			kretries++
			if tries > 50 {
				t.Fatalf("kernel datagram %d: no echo after %d tries; stats %+v", i, tries, p.Stats())
			}
		}
	}
	return retries, kretries
}

// TestDPDKVethRaptor runs a Raptor session between an endpoint on DPDK
// (net_af_packet on a veth end) and one on kernel UDP in the peer namespace:
// 4 streams carry 16 MiB each way, checked by SHA-256. Variants: kernel
// dials DPDK (clean and with 5% nftables loss each way), DPDK dials kernel.
func TestDPDKVethRaptor(t *testing.T) {
	for _, tc := range []struct {
		name     string
		loss     int
		dpdkDial bool
	}{{"clean", 0, false}, {"loss5", 5, false}, {"dpdk-dials", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			v := newDPVeth(t)
			if tc.loss > 0 {
				v.addLoss(t, tc.loss)
			}
			p := v.openDPDK(t, 4000)
			cfg := &reliable.Config{Logger: dpQuiet}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			var s *reliable.Session
			var l *reliable.Listener
			start := time.Now()
			if !tc.dpdkDial {
				var err error
				if l, err = reliable.ListenPacket(p, cfg); err != nil {
					t.Fatalf("ListenPacket on DPDK: %v", err)
				}
				if err := dpInNetns(v.nsK, func() error {
					var err error
					s, err = reliable.Dial(ctx, p.LocalAddr().String(), cfg)
					return err
				}); err != nil {
					t.Fatalf("Dial from kernel UDP in %s to DPDK %v: %v", v.nsK, p.LocalAddr(), err)
				}
			} else {
				kaddr := netip.AddrPortFrom(v.kernelIP, 5000)
				if err := dpInNetns(v.nsK, func() error {
					var err error
					l, err = reliable.Listen(kaddr.String(), cfg)
					return err
				}); err != nil {
					t.Fatalf("Listen on kernel UDP %v in %s: %v", kaddr, v.nsK, err)
				}
				var err error
				if s, err = reliable.DialPacket(ctx, p, kaddr, cfg); err != nil {
					t.Fatalf("DialPacket from DPDK to kernel %v: %v", kaddr, err)
				}
			}
			t.Cleanup(func() { s.Close(); l.Close() })
			t.Logf("handshake over veth+DPDK in %v", time.Since(start))
			seed := rand.Uint64()
			t.Logf("seed %d", seed)
			const streams, per = 4, 4 << 20
			start = time.Now()
			dpTransfer(t, ctx, s, l.AcceptStream, streams, per, seed)
			el := time.Since(start)
			t.Logf("%d MiB each way on %d streams in %v (%s each way)", streams*per>>20, streams, el.Round(time.Millisecond), dpRate(streams*per, el))
			t.Logf("DPDK port: %+v", p.Stats())
			t.Logf("dialer session: %+v", s.Stats())
			t.Logf("kernel side: %s", v.kernelUDPStats(t))
			if tc.loss > 0 {
				in, out := v.lossDropped(t)
				t.Logf("nftables dropped %d frames towards the kernel, %d towards DPDK", in, out)
				if in == 0 || out == 0 {
					t.Errorf("loss injection had no effect: %d/%d", in, out)
				}
			}
		})
	}
}
