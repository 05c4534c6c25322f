package impair

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenTUNIn creates the TUN device name inside the network namespace at
// netnsPath (for example /run/netns/NAME; empty: the current one), in
// IFF_TUN|IFF_NO_PI mode: each Read returns one IP packet. Only the calling
// OS thread enters the namespace, and it returns before the call ends. (A
// TUN device moved to another namespace after it was opened stops reading,
// hence creating it in place.)
func OpenTUNIn(name, netnsPath string) (*os.File, error) {
	if netnsPath == "" {
		return OpenTUN(name)
	}
	target, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("impair: network namespace %q: %w", netnsPath, err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("impair: current network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("impair: enter %q: %w", netnsPath, err)
	}
	f, oerr := OpenTUN(name)
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// This thread is stuck in the other namespace: keep it locked so
		// that it dies with this goroutine instead of serving others.
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("impair: leave %q: %w", netnsPath, err)
	}
	runtime.UnlockOSThread()
	return f, oerr
}

// OpenTUN creates (or attaches to) the TUN device name in the current
// network namespace, in IFF_TUN|IFF_NO_PI mode.
func OpenTUN(name string) (*os.File, error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("impair: TUN name %q: want 1 to %d bytes", name, unix.IFNAMSIZ-1)
	}
	// Attach first, then hand the descriptor to the runtime poller: a TUN
	// file registered with epoll before TUNSETIFF never reports readable.
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("impair: open /dev/net/tun for %q: %w", name, err)
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TUN | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("impair: TUNSETIFF %q: %w", name, e)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("impair: TUN %q non-blocking: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
	return f, nil
}
