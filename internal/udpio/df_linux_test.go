package udpio

import (
	"errors"
	"net/netip"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDontFragmentOption: every Conn asks the kernel for IP_PMTUDISC_PROBE
// (IPV6_PMTUDISC_PROBE too on an AF_INET6 socket) and reports it.
func TestDontFragmentOption(t *testing.T) {
	for _, tc := range []struct {
		addr string
		v6   bool
	}{{"127.0.0.1:0", false}, {"[::1]:0", true}} {
		t.Run(tc.addr, func(t *testing.T) {
			c, err := Listen(tc.addr)
			if err != nil {
				t.Skipf("listen %s: %v", tc.addr, err)
			}
			defer c.Close()
			if !c.Stats().DontFragment {
				t.Fatalf("%s: Stats.DontFragment false", tc.addr)
			}
			level, opt, want := unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE
			if tc.v6 {
				level, opt, want = unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE
			}
			var got int
			var gerr error
			if err := c.rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
				t.Fatalf("getsockopt: %v %v", err, gerr)
			}
			if got != want {
				t.Fatalf("%s: MTU discover option %d, want %d (PROBE)", tc.addr, got, want)
			}
		})
	}
}

// TestDontFragmentNetns: in a network namespace of its own whose loopback has
// a 1500-byte MTU, a datagram above it is refused with EMSGSIZE (not sent in
// fragments), the datagrams before it in the batch are sent, and one that
// fits arrives. Needs root (CAP_SYS_ADMIN) and ip(8).
func TestDontFragmentNetns(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip(8) not installed")
	}
	type socks struct {
		tx, rx *Conn
		err    error
	}
	made := make(chan socks, 1)
	go func() {
		// This goroutine's thread moves into a new network namespace and is
		// never given back (it exits locked), so nothing else runs there.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			made <- socks{err: err}
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "mtu", "1500", "up").CombinedOutput(); err != nil {
			made <- socks{err: errors.New("ip link set lo mtu 1500 up: " + err.Error() + ": " + string(out))}
			return
		}
		tx, err := Listen("127.0.0.1:0")
		if err != nil {
			made <- socks{err: err}
			return
		}
		rx, err := Listen("127.0.0.1:0")
		if err != nil {
			tx.Close()
			made <- socks{err: err}
			return
		}
		made <- socks{tx: tx, rx: rx}
	}()
	sk := <-made
	if sk.err != nil {
		t.Skipf("no network namespace of our own: %v", sk.err)
	}
	defer sk.tx.Close()
	defer sk.rx.Close()
	small, big := make([]byte, 1400), make([]byte, 2000)
	small[0], big[0] = 1, 2
	dst := []netip.AddrPort{sk.rx.LocalAddr(), sk.rx.LocalAddr()}
	n, err := sk.tx.WriteBatch([][]byte{small, big}, dst)
	if n != 1 || !errors.Is(err, unix.EMSGSIZE) {
		t.Fatalf("WriteBatch of 1400 and 2000 bytes over a 1500-byte MTU: sent %d, %v; want 1 and EMSGSIZE", n, err)
	}
	if err := sk.rx.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, 4096), make([]byte, 4096)}
	sizes, addrs := make([]int, 2), make([]netip.AddrPort, 2)
	got, err := sk.rx.ReadBatch(bufs, sizes, addrs)
	if err != nil || got != 1 || sizes[0] != len(small) || bufs[0][0] != 1 {
		t.Fatalf("ReadBatch: %d datagrams (first %d bytes), %v; want the 1400-byte one", got, sizes[0], err)
	}
}
