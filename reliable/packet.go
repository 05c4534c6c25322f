package reliable

import "net/netip"

// PacketConn is the packet I/O seam beneath a Raptor endpoint (docs/PROTOCOL.md §2).
// The kernel UDP implementation is internal/udpio (used by Listen and Dial); the DPDK
// implementation lives in package dpdk; the simulated network in internal/simnet.
// Its method set uses standard-library types only, so an implementation needs to
// import nothing from Raptor.
//
// One goroutine at a time calls ReadBatch (the endpoint's receive loop, or a
// Stream.Read that holds the endpoint's read token) while others may call
// WriteBatch concurrently; implementations must allow that.
//
// An implementation that also has SetReadDeadline(time.Time) error, under
// which a deadline in the past makes a blocked or later ReadBatch return an
// error wrapping os.ErrDeadlineExceeded and the zero time clears it (as
// internal/udpio and internal/simnet do), lets a blocked Read read the socket
// itself (docs/ARCHITECTURE.md, "Round trip at the floor"); without it only
// the receive loop reads.
//
// An implementation that also has Peer() netip.AddrPort, returning a valid
// address, is connected to that one peer (udpio.Dial, as Dial opens): its
// ReadBatch and WriteBatch errors that carry an ICMP errno (ECONNREFUSED
// and the like) are reports about the peer, handled as docs/PROTOCOL.md
// §5.9 says.
type PacketConn interface {
	// ReadBatch blocks until at least one datagram is available and then reads up
	// to len(bufs) of them without blocking further. For each i < n, datagram i
	// is bufs[i][:sizes[i]] and came from addrs[i]. A datagram larger than its
	// buffer is truncated to it. After Close, ReadBatch returns an error that
	// wraps net.ErrClosed. len(sizes) and len(addrs) are at least len(bufs).
	//
	// An implementation may lend its own memory instead of copying: it then sets
	// bufs[i] to a slice of that memory holding the whole datagram, valid until
	// the next ReadBatch call (internal/udpio does so with UDP GRO, splitting a
	// coalesced run in place). Callers therefore read datagram i through
	// bufs[i] after the call, may pass the same bufs back, and keep nothing
	// beyond the next call; a caller that moves datagrams between slots swaps
	// the slices rather than copying into a slot's buffer.
	ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (n int, err error)
	// WriteBatch sends bufs[i] to addrs[i] for every i < len(bufs) and returns
	// how many were handed to the network. n < len(bufs) comes with an error.
	// It may block briefly while the device queue is full; it never retains bufs.
	WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (n int, err error)
	// LocalAddr is the address peers send to.
	LocalAddr() netip.AddrPort
	// Close unblocks ReadBatch and releases the device. It is idempotent.
	Close() error
}
