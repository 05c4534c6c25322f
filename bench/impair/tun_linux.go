package impair

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenTUN creates (or attaches to) the TUN device name in the current
// network namespace, in IFF_TUN|IFF_NO_PI mode: each Read returns one IP
// packet. The device may then be moved to another namespace with
// `ip link set NAME netns NS`; the returned file stays attached to it.
func OpenTUN(name string) (*os.File, error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("impair: TUN name %q: want 1 to %d bytes", name, unix.IFNAMSIZ-1)
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("impair: open /dev/net/tun for %q: %w", name, err)
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TUN | unix.IFF_NO_PI
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0])))
		if e != 0 {
			ierr = e
		}
	}); err != nil {
		ierr = err
	}
	if ierr != nil {
		f.Close()
		return nil, fmt.Errorf("impair: TUNSETIFF %q: %w", name, ierr)
	}
	return f, nil
}
