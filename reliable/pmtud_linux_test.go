package reliable

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/raptormq/raptor/internal/udpio"
)

// TestSizeDiscoveryKernelPath: over real sockets in a network namespace of
// the test's own whose loopback MTU is 9000 bytes, a protected session's
// datagram size grows from the base to what the kernel path carries (8972
// bytes of UDP payload over IPv4), never above: probes above it are refused
// by the kernel (don't-fragment, EMSGSIZE) and not sent in fragments. Needs
// root and ip(8). (Retransmissions are not asserted here: on a loaded host
// a real path has spurious ones; TestSimSizeDiscovery asserts none.)
func TestSizeDiscoveryKernelPath(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip(8) not installed")
	}
	type socks struct {
		srv, cli *udpio.Conn
		err      error
	}
	made := make(chan socks, 1)
	go func() {
		// The thread moves into a new network namespace and exits locked,
		// so nothing else ever runs there; the sockets made here stay in it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			made <- socks{err: err}
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "mtu", "9000", "up").CombinedOutput(); err != nil {
			made <- socks{err: errors.New("ip link set lo mtu 9000 up: " + err.Error() + ": " + string(out))}
			return
		}
		srv, err := udpio.Listen("127.0.0.1:0")
		if err != nil {
			made <- socks{err: err}
			return
		}
		cli, err := udpio.Listen("127.0.0.1:0")
		if err != nil {
			srv.Close()
			made <- socks{err: err}
			return
		}
		made <- socks{srv: srv, cli: cli}
	}()
	sk := <-made
	if sk.err != nil {
		t.Skipf("no network namespace of our own: %v", sk.err)
	}
	l, err := ListenPacket(sk.srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := DialPacket(ctx, sk.cli, sk.srv.LocalAddr(), pin(l, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseWithError(0, "done")
	w, r := simStreams(t, l, s)
	for i := 0; i < 64 && (i < 2 || s.searchingForTest()); i++ {
		simTransfer(t, w, r, 1<<20, uint64(i))
	}
	st := s.Stats()
	const pathMax = 9000 - 20 - 8 // IPv4 and UDP headers
	t.Logf("datagram size %d; probes sent %d acked %d lost %d; black holes %d; send errors %d; RTOs %d NAKs %d", st.DatagramSize,
		st.Get(CounterProbesSent), st.Get(CounterProbesAcked), st.Get(CounterProbesLost), st.Get(CounterBlackHoles), s.ep.sendErrors.Load(), st.Get(CounterRTOs), st.Get(CounterNaksReceived))
	if s.searchingForTest() {
		t.Errorf("still searching after 64 MiB")
	}
	if st.DatagramSize > pathMax || pathMax-st.DatagramSize > probeResolution {
		t.Errorf("datagram size %d, want within %d below %d", st.DatagramSize, probeResolution, pathMax)
	}
	if n := s.ep.sendErrors.Load(); n > st.Get(CounterProbesSent)-st.Get(CounterProbesAcked) {
		t.Errorf("%d send errors, more than the %d probes not acknowledged", n, st.Get(CounterProbesSent)-st.Get(CounterProbesAcked))
	}
}

// BenchmarkStreamWriteRead1KDatagramSize is BenchmarkStreamWriteRead1K (1 KiB
// messages one way over loopback, MTU 65536) for several ceilings of datagram
// size discovery, plaintext and protected, with the process's CPU time per
// message (getrusage, both endpoints): what the default ceiling is chosen by
// (docs/PROTOCOL.md §8.12).
func BenchmarkStreamWriteRead1KDatagramSize(b *testing.B) {
	for _, plain := range []bool{false, true} {
		for _, ceiling := range []int{-1, 4096, 8192, 16384, 32768, 65000} {
			name := fmt.Sprintf("protected/%d", ceiling)
			if plain {
				name = fmt.Sprintf("plaintext/%d", ceiling)
			}
			b.Run(name, func(b *testing.B) {
				cfg := &Config{MaxProbedDatagramSize: ceiling, InsecurePlaintext: plain}
				var before, after unix.Rusage
				unix.Getrusage(unix.RUSAGE_SELF, &before)
				benchStreamWriteRead(b, 1024, cfg)
				unix.Getrusage(unix.RUSAGE_SELF, &after)
				cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
				// The warm-up (8 MiB) is in the CPU time too: count its messages.
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N+(8<<20)/1024), "cpu-ns/msg")
			})
		}
	}
}
