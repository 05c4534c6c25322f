//go:build !linux

package udpio

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
)

const msgTrunc = 0x10 // MSG_TRUNC on Darwin and the BSDs; used only to count truncation

type rawIO struct{}

func newRawIO(syscall.RawConn) *rawIO { return nil }

func (*rawIO) setPeer(netip.AddrPort) {}

func (*rawIO) gsoStats() (bool, uint64) { return false, 0 }

func (*rawIO) setGSO(bool) {}

func (*rawIO) groStats() (bool, uint64) { return false, 0 }

func (*rawIO) singleStats() uint64 { return 0 }

func (*rawIO) setSingleReads(bool) {}

func (*rawIO) groAvailable() bool { return false }

func (*rawIO) setGROMode(syscall.RawConn, bool) error {
	return errors.New("UDP GRO only on Linux")
}

func (*rawIO) read(syscall.RawConn, [][]byte, []int, []netip.AddrPort) (int, int, int, int, error) {
	return 0, 0, 0, 0, errors.New("raw mmsg path not available")
}

func (*rawIO) write(syscall.RawConn, bool, [][]byte, []netip.AddrPort) (int, int, int, error) {
	return 0, 0, 0, errors.New("raw mmsg path not available")
}

func socketIsIPv6(_ syscall.RawConn, ua *net.UDPAddr) (bool, error) {
	return ua.IP.To4() == nil, nil
}

func setBuffers(_ syscall.RawConn, uc *net.UDPConn, size int) (int, int) {
	_ = uc.SetReadBuffer(size)
	_ = uc.SetWriteBuffer(size)
	return size, size // not reported portably
}

// setDontFragment is Linux-only (IP_PMTUDISC_PROBE); elsewhere the kernel's
// default applies, and Stats.DontFragment is false.
func setDontFragment(syscall.RawConn, bool) bool { return false }
