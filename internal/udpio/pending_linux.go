//go:build linux

package udpio

import "golang.org/x/sys/unix"

// Pending reports whether a received datagram waits in the socket, not yet
// read (ioctl SIOCINQ: the size of the next one; an empty datagram counts
// as none). reliable asks it before a retransmission timeout declares a
// loss, so that an ACK already received wins (docs/PROTOCOL.md §8.5). It
// allocates nothing.
func (c *Conn) Pending() bool {
	p := &c.pend
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fn == nil {
		p.fn = func(fd uintptr) {
			var err error
			if p.n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ); err != nil {
				p.n = 0
			}
		}
	}
	p.n = 0
	err := c.rc.Control(p.fn)
	return err == nil && p.n > 0
}
