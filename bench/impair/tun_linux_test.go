package impair

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread that has entered the namespace at path;
// sockets fn creates stay in that namespace.
func inNetns(t *testing.T, path string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v\n%s", args, err, out)
	}
}

// Two namespaces made by the test, each with a TUN device of the bridge:
// a datagram from one reaches the other, no sooner than the delay.
func TestTUNBridgeBetweenNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and TUN devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	tag := fmt.Sprintf("rbt%d", os.Getpid()%100000)
	nsA, nsB := tag+"a", tag+"b"
	ip(t, "netns", "add", nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsA).Run() })
	ip(t, "netns", "add", nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsB).Run() })

	ta, err := OpenTUNIn(tag+"ta", "/run/netns/"+nsA)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := OpenTUNIn(tag+"tb", "/run/netns/"+nsB)
	if err != nil {
		t.Fatal(err)
	}
	const delay = 5 * time.Millisecond
	br := NewBridge(ta, tb, Config{Delay: delay, Seed: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	ip(t, "-n", nsA, "addr", "add", "10.79.0.1", "peer", "10.79.0.2", "dev", tag+"ta")
	ip(t, "-n", nsB, "addr", "add", "10.79.0.2", "peer", "10.79.0.1", "dev", tag+"tb")
	ip(t, "-n", nsA, "link", "set", tag+"ta", "up")
	ip(t, "-n", nsB, "link", "set", tag+"tb", "up")

	var a, b *net.UDPConn
	inNetns(t, "/run/netns/"+nsB, func() {
		b, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 79, 0, 2), Port: 9999})
	})
	if err != nil || b == nil {
		t.Fatalf("listen in %s: %v", nsB, err)
	}
	defer b.Close()
	inNetns(t, "/run/netns/"+nsA, func() {
		a, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 79, 0, 2), Port: 9999})
	})
	if err != nil || a == nil {
		t.Fatalf("dial in %s: %v", nsA, err)
	}
	defer a.Close()

	b.SetReadDeadline(time.Now().Add(10 * time.Second)) // bound, not a measurement
	start := time.Now()
	if _, err := a.Write([]byte("through the bridge")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := b.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("nothing arrived: %v; bridge %v", err, br.Stats())
	}
	if got := time.Since(start); got < delay {
		t.Fatalf("arrived after %v, before the bridge's delay of %v", got, delay)
	}
	if string(buf[:n]) != "through the bridge" || !from.IP.Equal(net.IPv4(10, 79, 0, 1)) {
		t.Fatalf("got %q from %v", buf[:n], from)
	}
}
