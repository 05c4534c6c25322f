//go:build linux

package udpio

import "golang.org/x/sys/unix"

// Pending reports whether a received datagram waits in the socket, not yet
// read (ioctl SIOCINQ: the size of the next one; an empty datagram counts
// as none). reliable asks it before a retransmission timeout declares a
// loss, so that an ACK already received wins (docs/PROTOCOL.md §8.13).
func (c *Conn) Pending() bool {
	n := 0
	err := c.rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return err == nil && n > 0
}
