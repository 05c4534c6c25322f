// Package udpio is Raptor's kernel UDP packet path: it implements the
// reliable.PacketConn seam (batched reads and writes of datagrams with
// netip addresses) over a *net.UDPConn.
//
// On Linux the batches go straight to recvmmsg(2) and sendmmsg(2) through the
// socket's syscall.RawConn, with message headers, iovecs and raw socket
// addresses preallocated per Conn and reused, so a steady-state ReadBatch or
// WriteBatch allocates nothing. golang.org/x/net's ipv4/ipv6
// PacketConn.ReadBatch allocates a net.IP and a *net.UDPAddr per received
// datagram, so it is used only on other platforms (and, on Linux, when the
// test hook selects it for comparison). Socket buffers are raised to
// SocketBufferSize (SO_RCVBUFFORCE/SO_SNDBUFFORCE when privileged, falling
// back to SO_RCVBUF/SO_SNDBUF); the sizes the kernel granted are in Stats.
//
// On Linux both offloads are used where the kernel has them: UDP GSO
// (UDP_SEGMENT) sends a run of equal-size datagrams to one address as one
// message, and UDP GRO (UDP_GRO) receives a run from one sender as one
// message, which ReadBatch splits into its datagrams in place. GRO is
// switched on by the first read that returns a run of 8 equal-size
// datagrams from one peer (bulk traffic; its 64 KiB receive slots would be
// wasted on an idle or request/response socket). With GRO on, ReadBatch lends memory: it points
// bufs[i] at the datagram inside the Conn's receive slots instead of copying
// it into the caller's buffer (see ReadBatch).
//
// On Linux a batch of one datagram goes to sendto(2), and a read that
// follows a wait for an empty socket (sparse traffic, a request/response
// exchange) takes the datagram that woke it with recvfrom(2): the vector calls
// cost the kernel a message header and an iovec to copy in and check per
// call, which is measurable on a round trip of a few µs (Stats.SingleSyscalls).
//
// On Linux every datagram leaves with the IP don't-fragment bit and is never
// fragmented locally (IP_PMTUDISC_PROBE): one too large for the device fails
// with EMSGSIZE, one too large for a later link is dropped there, which is
// what Raptor's datagram size discovery relies on (Stats.DontFragment).
//
// A Conn made by Dial is connected (connect(2)) to its one peer, from a
// socket of the peer's family (AF_INET for an IPv4 peer, AF_INET6 with
// IPV6_V6ONLY for IPv6): its datagrams leave without a destination address
// (no per-datagram route lookup and no IPv4-mapped address handling in the
// kernel), it receives only from that peer, and the kernel reports ICMP
// errors about the peer (port unreachable as ECONNREFUSED, packet too big as
// EMSGSIZE, ...) on the next read or write, once each. A datagram for any
// other address is refused with ErrNotPeer, never sent.
//
// One goroutine may call ReadBatch while any number call WriteBatch; writes
// are serialised on one mutex that guards the reusable send headers.
package udpio

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// SocketBufferSize is the receive and send buffer size requested from the
// kernel for every Conn (the kernel may grant less, or double it: see
// Stats.RecvBuffer and Stats.SendBuffer).
const SocketBufferSize = 4 << 20

// MaxBatch is the largest number of datagrams passed to one recvmmsg or
// sendmmsg call (Linux UIO_MAXIOV). Longer WriteBatch calls are split; a
// ReadBatch returns at most MaxBatch datagrams.
const MaxBatch = 1024

// Stats are the cumulative counters of a Conn.
type Stats struct {
	DatagramsRead    uint64 // datagrams returned by ReadBatch
	BytesRead        uint64 // bytes returned by ReadBatch (after truncation)
	ReadSyscalls     uint64 // successful receive system calls
	SingleSyscalls   uint64 // of ReadSyscalls and WriteSyscalls, those that moved one datagram with recvfrom or sendto (Linux)
	Truncated        uint64 // datagrams larger than their buffer
	DatagramsWritten uint64 // datagrams accepted by the kernel
	BytesWritten     uint64 // bytes accepted by the kernel
	WriteSyscalls    uint64 // successful send system calls
	SendErrors       uint64 // WriteBatch calls that failed on a datagram
	GSOMessages      uint64 // messages sent with UDP_SEGMENT (each carrying 2..64 datagrams)
	GSO              bool   // UDP_SEGMENT in use for runs of equal-size datagrams to one address
	GROMessages      uint64 // received messages with UDP_GRO that carried 2 or more datagrams
	GRO              bool   // UDP_GRO on (after the first bulk read): coalesced runs are received and split in place
	RecvBuffer       int    // effective SO_RCVBUF in bytes
	SendBuffer       int    // effective SO_SNDBUF in bytes
	DontFragment     bool   // datagrams leave with the don't-fragment bit and are never fragmented locally (Linux)
	Connected        bool   // the socket is connected to one peer (Dial): see Conn.Peer
	UnnamedWritten   uint64 // datagrams sent without a destination address, to the connected peer
}

// OpError is the error of a failed ReadBatch or WriteBatch. It names the
// local address, the datagram index in the batch and its peer address (for
// writes), and unwraps to the cause (net.ErrClosed after Close).
type OpError struct {
	Op    string         // "read" or "write"
	Local netip.AddrPort // the Conn's address
	Index int            // index in the batch of the failing datagram, or -1
	Addr  netip.AddrPort // the destination of the failing datagram (writes)
	Err   error          // the cause
}

// Error names the operation, the addresses and the batch index.
func (e *OpError) Error() string {
	if e.Op == "write" && e.Index >= 0 {
		return fmt.Sprintf("udpio: %s from %v to %v (batch index %d): %v", e.Op, e.Local, e.Addr, e.Index, e.Err)
	}
	return fmt.Sprintf("udpio: %s on %v: %v", e.Op, e.Local, e.Err)
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// errShortSlices is returned when sizes or addrs are shorter than bufs.
var errShortSlices = errors.New("sizes or addrs shorter than bufs")

// ErrNotPeer is the cause of a WriteBatch error for a datagram addressed to
// anything but the peer of a connected Conn (Dial); it is not sent.
var ErrNotPeer = errors.New("destination is not the connected peer")

// Conn is a UDP socket implementing reliable.PacketConn with batched I/O.
type Conn struct {
	uc    *net.UDPConn
	rc    syscall.RawConn
	laddr netip.AddrPort
	// readTimeout is ReadBatch's error when the read deadline passes, made
	// once: a reader that is interrupted by a past deadline (reliable's
	// reader leadership does so in steady state) allocates no error.
	readTimeout error
	v6          bool // the socket is AF_INET6 (possibly dual-stack)
	// peer is the address the socket is connected to (Dial), IPv4-mapped
	// addresses unmapped; the zero value on an unconnected socket.
	peer netip.AddrPort

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	rmu sync.Mutex // one reader at a time; guards the read state
	wmu sync.Mutex // guards the reusable write state

	useXNet bool // route I/O through golang.org/x/net (always off Linux)
	xn      *xnetIO
	raw     *rawIO // nil off Linux

	rcvbuf, sndbuf int
	df             bool // setDontFragment succeeded

	datagramsRead, bytesRead, readSyscalls, truncated   atomic.Uint64
	datagramsWritten, bytesWritten, writeSyscalls, errs atomic.Uint64
	unnamed                                             atomic.Uint64

	pend pendingProbe // Pending's state (Linux)
}

// Listen opens a UDP socket on addr ("host:port", IPv4 or IPv6; port 0
// picks a free port) and wraps it with New.
func Listen(addr string) (*Conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("udpio: resolve %q: %w", addr, err)
	}
	uc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("udpio: listen %q: %w", addr, err)
	}
	c, err := New(uc)
	if err != nil {
		uc.Close()
		return nil, err
	}
	return c, nil
}

// Dial opens a UDP socket connected to raddr (connect(2)) from an ephemeral
// port of the wildcard address, of raddr's family: an AF_INET socket for an
// IPv4 (or IPv4-mapped) raddr, an IPv6-only AF_INET6 one otherwise; see the
// package comment for what a connected Conn does differently.
func Dial(raddr netip.AddrPort) (*Conn, error) {
	a := raddr.Addr().Unmap()
	if !a.IsValid() || raddr.Port() == 0 {
		return nil, fmt.Errorf("udpio: dial %v: not a peer address (an IP address and a nonzero port)", raddr)
	}
	raddr = netip.AddrPortFrom(a, raddr.Port())
	network := "udp4"
	if a.Is6() {
		network = "udp6"
	}
	uc, err := net.DialUDP(network, nil, net.UDPAddrFromAddrPort(raddr))
	if err != nil {
		return nil, fmt.Errorf("udpio: dial %v (%s): %w", raddr, network, err)
	}
	c, err := New(uc)
	if err != nil {
		uc.Close()
		return nil, err
	}
	return c, nil
}

// New wraps an open UDP socket, connected (its RemoteAddr is set) or not.
// The Conn owns it from then on: Close closes it. New raises the socket
// buffers to SocketBufferSize.
func New(uc *net.UDPConn) (*Conn, error) {
	if uc == nil {
		return nil, errors.New("udpio: New: nil *net.UDPConn")
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udpio: syscall conn of %v: %w", uc.LocalAddr(), err)
	}
	ua, ok := uc.LocalAddr().(*net.UDPAddr)
	if !ok || ua == nil {
		return nil, fmt.Errorf("udpio: local address %v is not UDP", uc.LocalAddr())
	}
	c := &Conn{uc: uc, rc: rc}
	lap := ua.AddrPort()
	c.laddr = netip.AddrPortFrom(lap.Addr().Unmap(), lap.Port())
	c.readTimeout = &OpError{Op: "read", Local: c.laddr, Index: -1, Err: os.ErrDeadlineExceeded}
	c.v6, err = socketIsIPv6(rc, ua)
	if err != nil {
		return nil, fmt.Errorf("udpio: socket family of %v: %w", c.laddr, err)
	}
	if ra, ok := uc.RemoteAddr().(*net.UDPAddr); ok && ra != nil {
		rap := ra.AddrPort()
		c.peer = netip.AddrPortFrom(rap.Addr().Unmap(), rap.Port())
	}
	c.rcvbuf, c.sndbuf = setBuffers(rc, uc, SocketBufferSize)
	c.df = setDontFragment(rc, c.v6)
	c.xn = newXNetIO(uc, c.v6)
	c.raw = newRawIO(rc)
	c.raw.setPeer(c.peer)
	c.useXNet = c.raw == nil
	return c, nil
}

// LocalAddr is the address peers send to (IPv4-mapped addresses unmapped).
func (c *Conn) LocalAddr() netip.AddrPort { return c.laddr }

// Peer is the address the Conn is connected to (Dial), or the zero
// AddrPort when it is not connected.
func (c *Conn) Peer() netip.AddrPort { return c.peer }

// SetReadDeadline makes a blocked or future ReadBatch return an error
// wrapping os.ErrDeadlineExceeded once t has passed; the zero time disables
// the deadline. It is not part of the PacketConn seam (the Raptor receive
// loop blocks until Close) but bounds reads in tests and tools.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	gso, gsoMsgs := c.raw.gsoStats()
	gro, groMsgs := c.raw.groStats()
	if c.useXNet {
		gso, gro = false, false
	}
	return Stats{
		GSO:              gso,
		GSOMessages:      gsoMsgs,
		GRO:              gro,
		GROMessages:      groMsgs,
		SingleSyscalls:   c.raw.singleStats(),
		DatagramsRead:    c.datagramsRead.Load(),
		BytesRead:        c.bytesRead.Load(),
		ReadSyscalls:     c.readSyscalls.Load(),
		Truncated:        c.truncated.Load(),
		DatagramsWritten: c.datagramsWritten.Load(),
		BytesWritten:     c.bytesWritten.Load(),
		WriteSyscalls:    c.writeSyscalls.Load(),
		SendErrors:       c.errs.Load(),
		RecvBuffer:       c.rcvbuf,
		SendBuffer:       c.sndbuf,
		DontFragment:     c.df,
		Connected:        c.peer.IsValid(),
		UnnamedWritten:   c.unnamed.Load(),
	}
}

// Close closes the socket and unblocks ReadBatch, which then returns an
// error wrapping net.ErrClosed. It is idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.closeErr = c.uc.Close()
	})
	return c.closeErr
}

// ReadBatch blocks until at least one datagram has arrived, then reads up to
// min(len(bufs), MaxBatch) datagrams without blocking further. Datagram i is
// bufs[i][:sizes[i]] from addrs[i]. IPv4-mapped source addresses are
// unmapped; on a connected Conn addrs[i] is Peer (the kernel delivers
// nothing else to it, so the source is not asked for). An ICMP error the
// kernel holds for a connected Conn's peer is returned, once, as an
// *OpError wrapping its errno (syscall.ECONNREFUSED for port unreachable)
// with no datagram. Only one goroutine should read at a time.
//
// Without GRO (Stats.GRO false) datagrams are received into the caller's
// buffers and one longer than its buffer is truncated (and counted in
// Stats.Truncated); the Conn keeps pointers to them after the call, so that
// the next call with the same buffers (a receive loop's) reuses its kernel
// message headers. With GRO the caller's buffers are not written: ReadBatch
// sets bufs[i] to a slice of the Conn's own receive memory that holds the
// whole datagram (len and cap sizes[i]), valid until the next ReadBatch;
// datagrams of a coalesced run that did not fit in this batch are returned
// by the next call without a system call.
func (c *Conn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	if len(sizes) < len(bufs) || len(addrs) < len(bufs) {
		return 0, &OpError{Op: "read", Local: c.laddr, Index: -1, Err: fmt.Errorf("%w: len(bufs)=%d len(sizes)=%d len(addrs)=%d", errShortSlices, len(bufs), len(sizes), len(addrs))}
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	if len(bufs) > MaxBatch {
		bufs = bufs[:MaxBatch]
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	var n, nbytes, ntrunc, calls int
	var err error
	if c.useXNet {
		n, nbytes, ntrunc, err = c.xn.read(bufs, sizes, addrs)
		calls = 1
	} else {
		n, nbytes, ntrunc, calls, err = c.raw.read(c.rc, bufs, sizes, addrs)
	}
	if n > 0 {
		c.readSyscalls.Add(uint64(calls))
		c.datagramsRead.Add(uint64(n))
		c.bytesRead.Add(uint64(nbytes))
		if ntrunc > 0 {
			c.truncated.Add(uint64(ntrunc))
		}
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && !c.closed.Load() {
			return n, c.readTimeout
		}
		return n, c.opErr("read", -1, netip.AddrPort{}, err)
	}
	return n, nil
}

// WriteBatch sends bufs[i] to addrs[i] for each i, in order, using as few
// sendmmsg calls as the kernel allows. It blocks while the socket send
// buffer is full. It returns how many datagrams the kernel accepted; when
// that is less than len(bufs) the error is an *OpError naming the index and
// destination of the datagram that failed (the ones after it were not
// attempted). On a connected Conn every addrs[i] must be Peer (an error
// wrapping ErrNotPeer names both otherwise), and the datagrams leave without
// a destination address; an ICMP error the kernel holds for the peer fails
// the write it reaches, once (the datagram it fails was not sent). It never
// retains bufs. Safe for concurrent use.
func (c *Conn) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	if len(addrs) < len(bufs) {
		return 0, &OpError{Op: "write", Local: c.laddr, Index: -1, Err: fmt.Errorf("%w: len(bufs)=%d len(addrs)=%d", errShortSlices, len(bufs), len(addrs))}
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	total := 0
	for total < len(bufs) {
		end := min(len(bufs), total+MaxBatch)
		var n, nbytes, calls int
		var err error
		if c.useXNet {
			n, nbytes, calls, err = c.xn.write(c.v6, c.peer, bufs[total:end], addrs[total:end])
		} else {
			n, nbytes, calls, err = c.raw.write(c.rc, c.v6, bufs[total:end], addrs[total:end])
		}
		if c.peer.IsValid() {
			c.unnamed.Add(uint64(n))
		}
		c.writeSyscalls.Add(uint64(calls))
		c.datagramsWritten.Add(uint64(n))
		c.bytesWritten.Add(uint64(nbytes))
		total += n
		if err != nil {
			c.errs.Add(1)
			return total, c.opErr("write", total, addrs[total], err)
		}
	}
	return total, nil
}

// opErr builds the typed error, mapping any error after Close to one that
// wraps net.ErrClosed.
func (c *Conn) opErr(op string, idx int, addr netip.AddrPort, err error) error {
	if c.closed.Load() && !errors.Is(err, net.ErrClosed) {
		err = fmt.Errorf("%w (%v)", net.ErrClosed, err)
	}
	return &OpError{Op: op, Local: c.laddr, Index: idx, Addr: addr, Err: err}
}

// errAddrFamily reports a destination that the socket's family cannot reach.
var errAddrFamily = errors.New("address family not supported by socket")

// checkPeer returns nil when a, unmapped, is peer, and an error wrapping
// ErrNotPeer naming both otherwise.
func checkPeer(peer, a netip.AddrPort) error {
	if netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) == peer {
		return nil
	}
	return fmt.Errorf("%w: datagram to %v on a socket connected to %v", ErrNotPeer, a, peer)
}

// destIP returns the 16-byte (v6 socket) or 4-byte form of the destination.
func destIP(v6 bool, a netip.Addr) (ip [16]byte, n int, err error) {
	if !a.IsValid() {
		return ip, 0, fmt.Errorf("invalid destination address %v", a)
	}
	if v6 {
		return a.As16(), 16, nil
	}
	if a.Is4In6() {
		a = a.Unmap()
	}
	if !a.Is4() {
		return ip, 0, fmt.Errorf("%w: %v on an IPv4 socket", errAddrFamily, a)
	}
	a4 := a.As4()
	copy(ip[:], a4[:])
	return ip, 4, nil
}
