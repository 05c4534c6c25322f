//go:build dpdk && linux && cgo

package integration

// Helpers for the DPDK integration tests: network namespaces joined by a
// veth pair, nftables loss, and Raptor transfers checked by SHA-256.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raptormq/raptor/dpdk"
	"github.com/raptormq/raptor/reliable"
	"golang.org/x/sys/unix"
)

// dpVeth is two network namespaces joined by a veth pair: the DPDK side
// (dev, in nsD, driven by net_af_packet, no kernel IPv4 address) and the
// kernel side (peer, in nsK, with kernelIP).
type dpVeth struct {
	nsD, nsK  string
	dev, peer string
	dpdkIP    netip.Addr
	kernelIP  netip.Addr
	seq       int
}

var dpQuiet = slog.New(slog.DiscardHandler)

var dpVethSeq struct {
	sync.Mutex
	n int
}

func dpRun(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := dpRunErr(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func dpRunErr(stdin string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// newDPVeth creates the namespaces and the veth pair, removed in
// t.Cleanup (also when the test or benchmark fails). It skips only when not
// root or when namespaces cannot be created.
func newDPVeth(t testing.TB) *dpVeth {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces and veth pairs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2 (ip) not installed, cannot create network namespaces")
	}
	dpRemoveStaleNetns()
	dpVethSeq.Lock()
	dpVethSeq.n++
	seq := dpVethSeq.n
	dpVethSeq.Unlock()
	id := fmt.Sprintf("%d%03d", os.Getpid()%100000, seq)
	v := &dpVeth{
		nsD: "rdpdkD" + id, nsK: "rdpdkK" + id,
		dev: "rdd" + id, peer: "rdk" + id,
		dpdkIP:   netip.AddrFrom4([4]byte{10, 213, byte(seq), 1}),
		kernelIP: netip.AddrFrom4([4]byte{10, 213, byte(seq), 2}),
		seq:      seq,
	}
	if out, err := dpRunErr("", "ip", "netns", "add", v.nsD); err != nil {
		t.Skipf("skipped: cannot create network namespace %s: %v %s", v.nsD, err, out)
	}
	t.Cleanup(func() { dpRunErr("", "ip", "netns", "del", v.nsD) })
	dpRun(t, "", "ip", "netns", "add", v.nsK)
	t.Cleanup(func() { dpRunErr("", "ip", "netns", "del", v.nsK) })
	dpRun(t, "", "ip", "-n", v.nsD, "link", "add", v.dev, "type", "veth", "peer", "name", v.peer, "netns", v.nsK)
	for _, ns := range []string{v.nsD, v.nsK} {
		dpRun(t, "", "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		dpRun(t, "", "ip", "-n", ns, "link", "set", "lo", "up")
	}
	dpRun(t, "", "ip", "-n", v.nsD, "link", "set", v.dev, "up")
	dpRun(t, "", "ip", "-n", v.nsK, "addr", "add", v.kernelIP.String()+"/24", "dev", v.peer)
	dpRun(t, "", "ip", "-n", v.nsK, "link", "set", v.peer, "up")
	// veth hands the kernel's UDP checksums to the other end unfinished
	// (CHECKSUM_PARTIAL); af_packet cannot tell, so let the kernel finish them.
	dpRun(t, "", "ip", "netns", "exec", v.nsK, "ethtool", "-K", v.peer, "tx", "off")
	return v
}

// dpRemoveStaleNetns deletes namespaces left by earlier runs of these tests
// that were killed before their cleanup ran (names carry the creator's pid).
func dpRemoveStaleNetns() {
	out, err := dpRunErr("", "ip", "netns", "list")
	if err != nil {
		return
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "rdpdk") || len(f[0]) < 10 {
			continue
		}
		pid, err := strconv.Atoi(f[0][6 : len(f[0])-3])
		if err != nil || pid == os.Getpid()%100000 {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			dpRunErr("", "ip", "netns", "del", f[0])
		}
	}
}

// addLoss drops pct% of the frames in each direction at the kernel side's
// interface with an nftables netdev table (ingress and egress hooks).
func (v *dpVeth) addLoss(t *testing.T, pct int) {
	t.Helper()
	rules := fmt.Sprintf(`table netdev raptorloss {
  chain in { type filter hook ingress device "%[1]s" priority 0; numgen random mod 100 < %[2]d counter drop; }
  chain out { type filter hook egress device "%[1]s" priority 0; numgen random mod 100 < %[2]d counter drop; }
}
`, v.peer, pct)
	dpRun(t, rules, "ip", "netns", "exec", v.nsK, "nft", "-f", "-")
}

var dpNftCounter = regexp.MustCompile(`packets (\d+)`)

// lossDropped reads the nftables drop counters (both directions).
func (v *dpVeth) lossDropped(t *testing.T) (in, out int) {
	t.Helper()
	s := dpRun(t, "", "ip", "netns", "exec", v.nsK, "nft", "list", "table", "netdev", "raptorloss")
	m := dpNftCounter.FindAllStringSubmatch(s, -1)
	if len(m) != 2 {
		t.Fatalf("nft counters not found in:\n%s", s)
	}
	in, _ = strconv.Atoi(m[0][1])
	out, _ = strconv.Atoi(m[1][1])
	return in, out
}

// kernelUDPStats summarises the kernel side's UDP and device counters
// (receive buffer overflows, veth drops), to tell where frames were lost.
func (v *dpVeth) kernelUDPStats(t *testing.T) string {
	t.Helper()
	snmp := dpRun(t, "", "ip", "netns", "exec", v.nsK, "cat", "/proc/net/snmp")
	var names, vals []string
	for _, line := range strings.Split(snmp, "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		if names == nil {
			names = strings.Fields(line)[1:]
		} else {
			vals = strings.Fields(line)[1:]
		}
	}
	var b strings.Builder
	for i := range min(len(names), len(vals)) {
		switch names[i] {
		case "InDatagrams", "OutDatagrams", "InErrors", "RcvbufErrors", "SndbufErrors", "NoPorts", "InCsumErrors":
			fmt.Fprintf(&b, "Udp%s=%s ", names[i], vals[i])
		}
	}
	link := dpRun(t, "", "ip", "-n", v.nsK, "-s", "link", "show", v.peer)
	return b.String() + "| " + strings.Join(strings.Fields(link), " ")
}

// dpInNetns runs fn on an OS thread that entered network namespace ns.
// Sockets fn creates belong to ns and may then be used from any goroutine.
// The thread is never unlocked, so it exits with the goroutine.
func dpInNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// openDPDK opens a net_af_packet port on v.dev inside nsD (the PMD opens
// its packet socket at probe time, in the calling thread's namespace).
func (v *dpVeth) openDPDK(t *testing.T, port uint16) *dpdk.Port {
	t.Helper()
	if err := dpdk.InitEAL(nil); err != nil { // from this thread, so EAL threads stay in the root namespace
		t.Fatalf("EAL: %v", err)
	}
	var p *dpdk.Port
	err := dpInNetns(v.nsD, func() error {
		var err error
		p, err = dpdk.Open(dpdk.Config{
			Device:    fmt.Sprintf("net_af_packet%d,iface=%s", v.seq, v.dev),
			LocalAddr: netip.AddrPortFrom(v.dpdkIP, port),
			Subnet:    netip.PrefixFrom(v.dpdkIP, 24).Masked(),
			Logger:    dpQuiet,
		})
		return err
	})
	if err != nil {
		t.Fatalf("dpdk.Open on %s in %s: %v", v.dev, v.nsD, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// transfer opens nStreams streams on s, and on each sends perStream bytes
// while the peer (accepted through accept) sends perStream bytes back, both
// seeded random, checking SHA-256 at both ends.
func dpTransfer(t *testing.T, ctx context.Context, s *reliable.Session, accept func(context.Context) (*reliable.Stream, error), nStreams, perStream int, seed uint64) {
	t.Helper()
	payload := func(stream uint64, dir uint64) []byte {
		b := make([]byte, perStream)
		r := rand.New(rand.NewPCG(seed, stream<<1|dir))
		for i := 0; i+8 <= len(b); i += 8 {
			v := r.Uint64()
			for k := 0; k < 8; k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
		return b
	}
	errc := make(chan error, 4*nStreams)
	var wg sync.WaitGroup
	// Peer: accept nStreams, read the opener's bytes, send its own back.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < nStreams; i++ {
			st, err := accept(ctx)
			if err != nil {
				errc <- fmt.Errorf("accept stream %d: %w", i, err)
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer st.Close()
				// The opener sends its index in the first 8 bytes.
				var idx [8]byte
				if _, err := io.ReadFull(st, idx[:]); err != nil {
					errc <- fmt.Errorf("peer stream %d: read index: %w", st.ID(), err)
					return
				}
				n := uint64(idx[0])
				wdone := make(chan error, 1)
				go func() {
					_, err := st.Write(payload(n, 1))
					if err == nil {
						err = st.CloseWrite()
					}
					wdone <- err
				}()
				h := sha256.New()
				if _, err := io.Copy(h, st); err != nil {
					errc <- fmt.Errorf("peer stream %d: read: %w", n, err)
					return
				}
				if want := sha256.Sum256(payload(n, 0)); !bytes.Equal(h.Sum(nil), want[:]) {
					errc <- fmt.Errorf("peer stream %d: received data differs (SHA-256)", n)
				}
				if err := <-wdone; err != nil {
					errc <- fmt.Errorf("peer stream %d: write: %w", n, err)
				}
			}()
		}
	}()
	for i := 0; i < nStreams; i++ {
		st, err := s.OpenStream(ctx)
		if err != nil {
			t.Fatalf("OpenStream %d: %v", i, err)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer st.Close()
			wdone := make(chan error, 1)
			go func() {
				idx := [8]byte{byte(i)}
				_, err := st.Write(idx[:])
				if err == nil {
					_, err = st.Write(payload(uint64(i), 0))
				}
				if err == nil {
					err = st.CloseWrite()
				}
				wdone <- err
			}()
			h := sha256.New()
			if _, err := io.Copy(h, st); err != nil {
				errc <- fmt.Errorf("opener stream %d: read: %w", i, err)
				return
			}
			if want := sha256.Sum256(payload(uint64(i), 1)); !bytes.Equal(h.Sum(nil), want[:]) {
				errc <- fmt.Errorf("opener stream %d: received data differs (SHA-256)", i)
			}
			if err := <-wdone; err != nil {
				errc <- fmt.Errorf("opener stream %d: write: %w", i, err)
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("transfer did not finish: %v", ctx.Err())
	}
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// elapsedRate formats bytes over d as MiB/s.
func dpRate(bytes int, d time.Duration) string {
	return fmt.Sprintf("%.1f MiB/s", float64(bytes)/(1<<20)/d.Seconds())
}
