//go:build linux

package udpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const msgTrunc = unix.MSG_TRUNC

// rawIO drives recvmmsg/sendmmsg directly. Reads and writes have separate
// header arrays (a reader and writers run concurrently); each is guarded by
// the Conn's rmu or wmu respectively.
type rawIO struct {
	r, w mmsgState
	g    gsoState
	gr   groState
	// peer is the connected socket's peer (Conn.peer), zero when not
	// connected: messages then carry no address either way, and reads
	// return peer as every source.
	peer netip.AddrPort
	// zones caches interface index <-> name for link-local addresses.
	zoneName  map[uint32]string
	zoneIndex map[string]uint32
}

// mmsgState is one direction's reusable kernel headers plus the bound
// callback handed to RawConn.Read/Write (bound once, so no closure is
// allocated per call).
type mmsgState struct {
	hs    []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	cnt   int // messages to pass to the kernel
	n     int // result
	// ready: headers [0, ready) are set for readCopy's last buffers (and
	// only their Len, Namelen and Flags, which the kernel writes, need
	// setting again); 0 after anything else used them.
	ready int
	err   error
	fn    func(fd uintptr) bool
	// one: readCopy's syscalls take one datagram with recvfrom(2) (a send
	// with sendto(2)) instead of a vector with recvmmsg: see oneFn.
	one     bool
	waited  bool // this rc.Read found the socket empty at least once
	always  bool // every readCopy takes one datagram (tests and comparisons)
	gro     bool // the read is readGRO's: one datagram means recvmsg (it needs the control message)
	oneFn   func(fd uintptr) bool
	singles atomic.Uint64 // successful recvfrom/sendto calls
	fromLen uint32        // recvfrom's address length, in and out
	empties atomic.Uint64 // readCopy calls that found the socket empty (tests)
}

func newRawIO(rc syscall.RawConn) *rawIO {
	r := &rawIO{zoneName: map[uint32]string{}, zoneIndex: map[string]uint32{}}
	r.g.maxSeg = maxGSOBytes
	r.g.on.Store(detectGSO(rc))
	r.gr.avail = detectGRO(rc)
	r.gr.auto = r.gr.avail
	r.r.fn = r.r.recvmmsg
	r.r.oneFn = r.r.recvCopy
	r.w.fn = r.w.sendmmsg
	r.w.oneFn = r.w.sendto
	return r
}

func (s *mmsgState) grow(n int) {
	if len(s.hs) >= n {
		return
	}
	s.hs = make([]unix.Mmsghdr, n)
	s.iovs = make([]unix.Iovec, n)
	s.names = make([]unix.RawSockaddrInet6, n)
}

// set points header i at b, with the name slot of i when namelen > 0 and
// no name at all (a connected socket) when it is 0.
func (s *mmsgState) set(i int, b []byte, namelen uint32) {
	iov := &s.iovs[i]
	if len(b) > 0 {
		iov.Base = &b[0]
	} else {
		iov.Base = nil
	}
	iov.SetLen(len(b))
	h := &s.hs[i]
	h.Len = 0
	h.Hdr.Name = nil
	if namelen > 0 {
		h.Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
	}
	h.Hdr.Namelen = namelen
	h.Hdr.Iov = iov
	h.Hdr.SetIovlen(1)
	h.Hdr.Control = nil
	h.Hdr.SetControllen(0)
	h.Hdr.Flags = 0
}

// clear drops the references to caller buffers.
func (s *mmsgState) clear(n int) {
	for i := 0; i < n; i++ {
		s.iovs[i].Base = nil
	}
}

// settle records the outcome of one system call of an rc.Read or rc.Write
// callback that moved n messages (when e is 0) and reports whether the
// callback is done: false on EAGAIN, when the poller waits for the socket
// and calls again. (EINTR is retried by the caller, in its own loop, so that
// its pointers are converted in the system call's argument list.)
func (s *mmsgState) settle(op string, n int, e syscall.Errno) bool {
	switch e {
	case 0:
		s.n, s.err = n, nil
	case unix.EAGAIN:
		return false
	default:
		s.n, s.err = 0, os.NewSyscallError(op, e)
	}
	return true
}

func (s *mmsgState) recvmmsg(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hs[0])), uintptr(s.cnt), 0, 0, 0)
		if e != unix.EINTR {
			return s.settle("recvmmsg", int(r), e)
		}
	}
}

func (s *mmsgState) sendmmsg(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hs[0])), uintptr(s.cnt), 0, 0, 0)
		if e != unix.EINTR {
			return s.settle("sendmmsg", int(r), e)
		}
	}
}

// recvCopy is readCopy's receive callback. A vector system call costs the
// kernel more than a plain one: it copies in and checks a message header and
// an iovec per attempt (copy_msghdr_from_user, import_iovec; about 0.2 µs of
// a 64-byte loopback round trip on the test VM, see docs/ARCHITECTURE.md
// "One datagram, one plain call"). So once a read has found the socket
// empty, traffic is sparse and the datagram that wakes it is most likely
// alone: it is taken with recvfrom, and the next read starts with recvfrom
// too (s.one) unless that first try found a datagram already queued, which
// is what a burst looks like, and the read after it takes a vector again.
func (s *mmsgState) recvCopy(fd uintptr) bool {
	if !s.one && !s.waited && !s.always {
		if s.recvmmsg(fd) {
			return true
		}
	} else if s.gro {
		if s.recvmsg(fd) {
			return true
		}
	} else if s.recvfrom(fd) {
		return true
	}
	if !s.waited {
		s.waited = true
		s.empties.Add(1)
	}
	return false
}

// recvfrom receives one datagram into message 0's buffer and name slot and
// fills message 0's header as recvmmsg would (Len, MSG_TRUNC in Flags).
func (s *mmsgState) recvfrom(fd uintptr) bool {
	h := &s.hs[0]
	iov := h.Hdr.Iov
	var name *byte
	var plen *uint32 // in s, not on the stack: the kernel writes it, and a stack may move
	if h.Hdr.Namelen > 0 {
		name, plen = h.Hdr.Name, &s.fromLen
	}
	for {
		s.fromLen = h.Hdr.Namelen
		// MSG_TRUNC: the result is the datagram's length even when the
		// buffer was shorter, which is how truncation is seen.
		r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(iov.Base)), uintptr(iov.Len), unix.MSG_TRUNC,
			uintptr(unsafe.Pointer(name)), uintptr(unsafe.Pointer(plen)))
		if e == unix.EINTR {
			continue
		}
		if e == 0 {
			h.Len, h.Hdr.Flags = uint32(r), 0
			if uint64(r) > uint64(iov.Len) {
				h.Len, h.Hdr.Flags = uint32(iov.Len), unix.MSG_TRUNC
			}
			s.singles.Add(1)
		}
		return s.settle("recvfrom", 1, e)
	}
}

// recvmsg receives one message into message 0's buffer, name and control
// slots (readGRO's: a coalesced run comes with its segment size in the
// control message, which recvfrom cannot return): one header to copy in
// and check, where recvmmsg with a vector longer than one tries a second
// message and copies its header too before it finds the socket empty.
func (s *mmsgState) recvmsg(fd uintptr) bool {
	h := &s.hs[0]
	for {
		r, _, e := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&h.Hdr)), 0)
		if e == unix.EINTR {
			continue
		}
		if e == 0 {
			h.Len = uint32(r)
			s.singles.Add(1)
		}
		return s.settle("recvmsg", 1, e)
	}
}

// sendto sends message 0 (one datagram, no control message) with sendto(2):
// send's callback when a write is a single datagram, for the reason
// recvCopy gives.
func (s *mmsgState) sendto(fd uintptr) bool {
	h := &s.hs[0]
	iov := h.Hdr.Iov
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(iov.Base)), uintptr(iov.Len), 0, uintptr(unsafe.Pointer(h.Hdr.Name)), uintptr(h.Hdr.Namelen))
		if e == unix.EINTR {
			continue
		}
		if e == 0 {
			h.Len = uint32(r)
			s.singles.Add(1)
		}
		return s.settle("sendto", 1, e)
	}
}

func (r *rawIO) read(rc syscall.RawConn, bufs [][]byte, sizes []int, addrs []netip.AddrPort) (n, nbytes, ntrunc, calls int, err error) {
	if r.gr.on.Load() {
		return r.readGRO(rc, bufs, sizes, addrs)
	}
	n, nbytes, ntrunc, calls, err = r.readCopy(rc, bufs, sizes, addrs)
	if r.gr.auto && n >= groAutoBatch && err == nil && bulkRun(sizes[:n], addrs[:n]) {
		// Bulk traffic: from now on take coalesced runs (see groState).
		r.gr.auto = false
		if setGRO(rc, true) == nil {
			r.gr.on.Store(true)
		}
	}
	return n, nbytes, ntrunc, calls, err
}

// bulkRun reports whether the batch holds groAutoBatch consecutive datagrams
// of one size from one address: what a sender's GSO run looks like once the
// kernel has segmented it, and what GRO would have coalesced. (A burst of
// handshakes from many peers is not one.)
func bulkRun(sizes []int, addrs []netip.AddrPort) bool {
	run := 1
	for i := 1; i < len(sizes); i++ {
		if sizes[i] == sizes[i-1] && addrs[i] == addrs[i-1] {
			run++
			if run >= groAutoBatch {
				return true
			}
		} else {
			run = 1
		}
	}
	return false
}

// readCopy receives into the caller's buffers, one datagram each. The
// headers stay set for the same buffers from one call to the next (a
// receive loop passes the same ones every time): only the fields the kernel
// wrote are reset.
func (r *rawIO) readCopy(rc syscall.RawConn, bufs [][]byte, sizes []int, addrs []netip.AddrPort) (n, nbytes, ntrunc, calls int, err error) {
	s := &r.r
	switch {
	case s.one && !s.always:
		// Only recvfrom into the first buffer can run (recvCopy): its
		// header is all that must be right, not the whole batch's.
		if !s.readyFor1(bufs[0]) {
			s.grow(len(bufs))
			s.set(0, bufs[0], r.nameLen())
			s.ready = 0 // a vector read sets every header again
		}
	case !s.readyFor(bufs):
		s.grow(len(bufs))
		for i, b := range bufs {
			s.set(i, b, r.nameLen())
		}
		s.ready = len(bufs)
	}
	s.cnt = len(bufs)
	s.n, s.err = 0, nil
	s.waited, s.gro = false, false
	rerr := rc.Read(s.oneFn)
	// The next read starts with recvfrom when this one found the socket
	// empty first and then took one datagram (see recvCopy).
	s.one = s.waited && s.n == 1
	if rerr != nil {
		return 0, 0, 0, 0, rerr
	}
	if s.err != nil {
		return 0, 0, 0, 0, s.err
	}
	for i := 0; i < s.n; i++ {
		h := &s.hs[i]
		sizes[i] = int(h.Len)
		nbytes += int(h.Len)
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			ntrunc++
		}
		addrs[i] = r.parse(&s.names[i])
		h.Len, h.Hdr.Namelen, h.Hdr.Flags = 0, r.nameLen(), 0
	}
	return s.n, nbytes, ntrunc, 1, nil
}

// readyFor1 reports whether header 0 is set for b.
func (s *mmsgState) readyFor1(b []byte) bool {
	return len(s.hs) > 0 && s.hs[0].Hdr.Iov == &s.iovs[0] && s.holds(0, b)
}

// readyFor reports whether the headers are set for exactly bufs.
func (s *mmsgState) readyFor(bufs [][]byte) bool {
	if s.ready != len(bufs) {
		return false
	}
	for i, b := range bufs {
		if !s.holds(i, b) {
			return false
		}
	}
	return true
}

// holds reports whether iovec i points at exactly b.
func (s *mmsgState) holds(i int, b []byte) bool {
	iov := &s.iovs[i]
	return uint64(iov.Len) == uint64(len(b)) && (len(b) == 0 || iov.Base == &b[0])
}

// setPeer makes reads and writes those of a socket connected to peer.
func (r *rawIO) setPeer(peer netip.AddrPort) { r.peer = peer }

// nameLen is the size of the source address slot a read asks for: none on
// a connected socket.
func (r *rawIO) nameLen() uint32 {
	if r.peer.IsValid() {
		return 0
	}
	return unix.SizeofSockaddrInet6
}

// parse returns the source address in sa (the peer, on a connected socket).
func (r *rawIO) parse(sa *unix.RawSockaddrInet6) netip.AddrPort {
	if r.peer.IsValid() {
		return r.peer
	}
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	case unix.AF_INET6:
		a := netip.AddrFrom16(sa.Addr).Unmap()
		if sa.Scope_id != 0 && a.Is6() {
			a = a.WithZone(r.zone(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, ntohs(sa.Port))
	}
	return netip.AddrPort{}
}

func (r *rawIO) zone(idx uint32) string {
	if z, ok := r.zoneName[idx]; ok {
		return z
	}
	z := strconv.FormatUint(uint64(idx), 10)
	if ifi, err := net.InterfaceByIndex(int(idx)); err == nil {
		z = ifi.Name
	}
	if len(r.zoneName) < 64 {
		r.zoneName[idx] = z
	}
	return z
}

func (r *rawIO) zoneIdx(z string) uint32 {
	if i, ok := r.zoneIndex[z]; ok {
		return i
	}
	var idx uint32
	if ifi, err := net.InterfaceByName(z); err == nil {
		idx = uint32(ifi.Index)
	} else if v, err := strconv.ParseUint(z, 10, 32); err == nil {
		idx = uint32(v)
	}
	if len(r.zoneIndex) < 64 {
		r.zoneIndex[z] = idx
	}
	return idx
}

func ntohs(p uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], p)
	return binary.BigEndian.Uint16(b[:])
}

func htons(p uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], p)
	return binary.NativeEndian.Uint16(b[:])
}

// UDP generic segmentation offload (UDP_SEGMENT, Linux 4.18+): a run of
// datagrams to one address whose sizes are equal (the last may be shorter)
// is passed to the kernel as one message with a UDP_SEGMENT control message,
// and the kernel (or NIC) cuts it into datagrams. This saves per-datagram
// trips through the stack; receivers see ordinary datagrams.
const (
	maxGSOSegments = 64    // UDP_MAX_SEGMENTS on older kernels
	maxGSOBytes    = 65507 // largest UDP payload over IPv4
)

var gsoSpace = unix.CmsgSpace(2)

// gsoState is the write side's GSO bookkeeping, guarded by the Conn's wmu
// except the counters.
type gsoState struct {
	on     atomic.Bool   // the kernel accepted UDP_SEGMENT and no EIO since
	maxSeg int           // largest segment size not yet refused (EINVAL/EMSGSIZE)
	msgs   atomic.Uint64 // messages sent with UDP_SEGMENT
	oob    []byte        // one cmsg slot per message
	first  []int         // first datagram of each message
	count  []int         // datagrams in each message
}

// detectGSO reports whether the socket accepts the UDP_SEGMENT option.
func detectGSO(rc syscall.RawConn) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
		ok = err == nil
	})
	return ok
}

// build fills message headers for datagrams [from, cnt), grouping runs for
// GSO when useGSO, and returns the number of messages.
func (r *rawIO) build(from, cnt int, bufs [][]byte, addrs []netip.AddrPort, useGSO bool) int {
	s, g := &r.w, &r.g
	m := 0
	for i := from; i < cnt; {
		k, seg := 1, len(bufs[i])
		if useGSO && seg > 0 && seg <= g.maxSeg {
			total := seg
			for i+k < cnt && k < maxGSOSegments {
				l := len(bufs[i+k])
				if l == 0 || l > seg || total+l > maxGSOBytes || addrs[i+k] != addrs[i] {
					break
				}
				total += l
				k++
				if l < seg {
					break
				}
			}
		}
		h := &s.hs[m]
		h.Len = 0
		if r.peer.IsValid() {
			h.Hdr.Name, h.Hdr.Namelen = nil, 0 // the connected peer
		} else {
			h.Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
			h.Hdr.Namelen = unix.SizeofSockaddrInet6
			if s.names[i].Family == unix.AF_INET {
				h.Hdr.Namelen = unix.SizeofSockaddrInet4
			}
		}
		h.Hdr.Iov = &s.iovs[i]
		h.Hdr.SetIovlen(k)
		h.Hdr.Flags = 0
		if k > 1 {
			oob := g.oob[m*gsoSpace : (m+1)*gsoSpace]
			clear(oob)
			cm := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
			cm.Level = unix.IPPROTO_UDP
			cm.Type = unix.UDP_SEGMENT
			cm.SetLen(unix.CmsgLen(2))
			binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(seg))
			h.Hdr.Control = &oob[0]
			h.Hdr.SetControllen(gsoSpace)
		} else {
			h.Hdr.Control = nil
			h.Hdr.SetControllen(0)
		}
		g.first[m], g.count[m] = i, k
		m++
		i += k
	}
	return m
}

func (r *rawIO) write(rc syscall.RawConn, v6 bool, bufs [][]byte, addrs []netip.AddrPort) (n, nbytes, calls int, err error) {
	s, g := &r.w, &r.g
	s.grow(len(bufs))
	if len(g.first) < len(bufs) {
		g.oob = make([]byte, len(bufs)*gsoSpace)
		g.first = make([]int, len(bufs))
		g.count = make([]int, len(bufs))
	}
	cnt := len(bufs)
	var encErr error
	for i := 0; i < cnt; i++ {
		if r.peer.IsValid() {
			if e := checkPeer(r.peer, addrs[i]); e != nil {
				cnt, encErr = i, e
				break
			}
		} else if e := r.encodeName(v6, i, addrs[i]); e != nil {
			cnt, encErr = i, e
			break
		}
		iov := &s.iovs[i]
		iov.Base = nil
		if len(bufs[i]) > 0 {
			iov.Base = &bufs[i][0]
		}
		iov.SetLen(len(bufs[i]))
	}
	defer s.clear(cnt)
	return r.send(rc, cnt, bufs, addrs, encErr)
}

// encodeName writes the destination of datagram i into its name slot.
func (r *rawIO) encodeName(v6 bool, i int, addr netip.AddrPort) error {
	ip, l, err := destIP(v6, addr.Addr())
	if err != nil {
		return err
	}
	sa := &r.w.names[i]
	if l == 4 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(addr.Port())}
		copy(sa4.Addr[:], ip[:4])
	} else {
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(addr.Port()), Addr: ip}
		if z := addr.Addr().Zone(); z != "" {
			sa.Scope_id = r.zoneIdx(z)
		}
	}
	return nil
}

// send passes datagrams [0, cnt), their iovecs and names set, to the kernel
// in as few sendmmsg calls as it takes; encErr is the error of datagram cnt
// (not sent), if any.
func (r *rawIO) send(rc syscall.RawConn, cnt int, bufs [][]byte, addrs []netip.AddrPort, encErr error) (n, nbytes, calls int, err error) {
	s, g := &r.w, &r.g
	useGSO := g.on.Load()
	for n < cnt {
		msgs := r.build(n, cnt, bufs, addrs, useGSO)
		sent := 0
		for sent < msgs {
			s.cnt = msgs - sent
			s.n, s.err = 0, nil
			hs := s.hs
			s.hs = s.hs[sent:] // point the kernel at the unsent tail
			fn := s.fn
			if s.cnt == 1 && g.count[sent] == 1 {
				fn = s.oneFn // one datagram: sendto (see recvCopy)
			}
			werr := rc.Write(fn)
			s.hs = hs
			if werr != nil {
				return n, nbytes, calls, werr
			}
			if s.err != nil {
				if k := g.count[sent]; k > 1 {
					// The kernel refused a GSO message: EIO means no
					// segmentation support on the route's device; EINVAL or
					// EMSGSIZE a segment too large for its MTU. Remember,
					// then resend from this datagram without GSO.
					var errno syscall.Errno
					if errors.As(s.err, &errno) && errno == unix.EIO {
						g.on.Store(false)
					} else {
						g.maxSeg = len(bufs[g.first[sent]]) - 1
					}
					useGSO = false
					break
				}
				return n, nbytes, calls, s.err
			}
			if s.n <= 0 {
				return n, nbytes, calls, errors.New("sendmmsg sent nothing")
			}
			calls++
			for j := sent; j < sent+s.n; j++ {
				if g.count[j] > 1 {
					g.msgs.Add(1)
				}
				for i := g.first[j]; i < g.first[j]+g.count[j]; i++ {
					nbytes += len(bufs[i])
				}
				n += g.count[j]
			}
			sent += s.n
		}
	}
	return n, nbytes, calls, encErr
}

// socketIsIPv6 reports whether the socket is AF_INET6 (Go opens a dual-stack
// AF_INET6 socket for wildcard listens such as "0.0.0.0:0" or ":0").
func socketIsIPv6(rc syscall.RawConn, _ *net.UDPAddr) (bool, error) {
	var dom int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		dom, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	}); err != nil {
		return false, err
	}
	if serr != nil {
		return false, fmt.Errorf("getsockopt SO_DOMAIN: %w", serr)
	}
	return dom == unix.AF_INET6, nil
}

// setBuffers requests size bytes for both socket buffers, first with the
// privileged *BUFFORCE options (which ignore net.core.[rw]mem_max), then the
// ordinary ones, and returns what the kernel reports.
func setBuffers(rc syscall.RawConn, _ *net.UDPConn, size int) (rcv, snd int) {
	_ = rc.Control(func(fd uintptr) {
		f := int(fd)
		if unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
			_ = unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
		}
		if unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
			_ = unix.SetsockoptInt(f, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
		}
		rcv, _ = unix.GetsockoptInt(f, unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(f, unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return rcv, snd
}

func (r *rawIO) gsoStats() (bool, uint64) {
	if r == nil {
		return false, 0
	}
	return r.g.on.Load(), r.g.msgs.Load()
}

// singleStats is the number of recvfrom and sendto calls that moved a
// datagram.
func (r *rawIO) singleStats() uint64 {
	if r == nil {
		return 0
	}
	return r.r.singles.Load() + r.w.singles.Load()
}

// setSingleReads makes every read take one message: one datagram with
// recvfrom, or with GRO on one (possibly coalesced) message with recvmsg
// (tests and comparisons).
func (r *rawIO) setSingleReads(on bool) { r.r.always = on }

func (r *rawIO) groStats() (bool, uint64) {
	if r == nil {
		return false, 0
	}
	return r.gr.on.Load(), r.gr.msgs.Load()
}

// setGSO turns GSO off (tests and comparisons) or back on if detected.
func (r *rawIO) setGSO(on bool) { r.g.on.Store(on) }

// UDP generic receive offload (UDP_GRO, Linux 5.0+): with the socket option
// set, the kernel may hand over a run of datagrams from one sender as one
// message (a GSO send on loopback or a veth arrives that way, and a NIC's GRO
// engine builds such runs), with a UDP_GRO control message giving the segment
// size: every datagram of the run has that size except a shorter last one.
// One message can be up to 64 KiB, so the read side receives into slots of
// groSlotSize bytes that the Conn owns and splits each message into its
// datagrams in place: ReadBatch points bufs[i] at the datagram in the slot
// (no copy) and keeps datagrams that did not fit in the caller's batch for
// the next call, which returns them without a system call.
//
// The slots cost memory (up to maxGROSlots × 64 KiB) and hold one datagram
// each when nothing is coalesced, so a Conn starts without GRO, receiving
// into the caller's buffers, and turns it on for good the first time a read
// returns a run of groAutoBatch datagrams of one size from one peer: bulk
// traffic (see bulkRun). An idle or request/response socket, or a listener
// hit by a burst of handshakes, never pays for the slots. (Turning GRO off again
// is not safe: runs the kernel queued coalesced would be truncated.)
const (
	groSlotSize  = 1 << 16 // the largest message UDP GRO builds (64 KiB)
	maxGROSlots  = 32      // messages per recvmmsg: 2 MiB of slots at most
	groOOBSize   = 64      // control buffer per message (UDP_GRO needs CmsgSpace(4))
	groAutoBatch = 8       // a run this long from one peer in one read switches GRO on
)

// groState is the read side's GRO bookkeeping, guarded by the Conn's rmu
// except on and msgs.
type groState struct {
	avail bool          // the kernel knows UDP_GRO
	auto  bool          // turn GRO on at the first bulk read
	on    atomic.Bool   // UDP_GRO is set: reads go through the slots
	msgs  atomic.Uint64 // messages that carried two or more datagrams
	mem   []byte        // slots × groSlotSize, allocated on the first read
	oob   []byte        // slots × groOOBSize
	pend  []groDatagram // datagrams of the last recvmmsg, in order
	head  int           // pend[:head] were returned
}

// groDatagram locates one datagram in the slots.
type groDatagram struct {
	off, n int
	addr   netip.AddrPort
}

// detectGRO reports whether the kernel knows the UDP_GRO option (Linux 5.0+).
func detectGRO(rc syscall.RawConn) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		_, err := unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO)
		ok = err == nil
	})
	return ok
}

// setGRO sets or clears UDP_GRO on the socket.
func setGRO(rc syscall.RawConn, on bool) error {
	v := 0
	if on {
		v = 1
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, v)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("setsockopt UDP_GRO=%d: %w", v, serr)
	}
	return nil
}

// groSegment returns the segment size of a UDP_GRO control message in oob,
// or 0 if there is none.
func groSegment(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			return int(binary.NativeEndian.Uint32(oob[unix.CmsgLen(0):]))
		}
		oob = oob[min(len(oob), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return 0
}

// readGRO returns pending datagrams of the last message batch or, when none
// are left, receives a new batch into the slots and splits it.
func (r *rawIO) readGRO(rc syscall.RawConn, bufs [][]byte, sizes []int, addrs []netip.AddrPort) (n, nbytes, ntrunc, calls int, err error) {
	g := &r.gr
	if g.head == len(g.pend) {
		slots := min(max(len(bufs)/2, 1), maxGROSlots)
		if len(g.mem) < slots*groSlotSize {
			g.mem = make([]byte, slots*groSlotSize)
			g.oob = make([]byte, slots*groOOBSize)
			g.pend = make([]groDatagram, 0, slots*maxGSOSegments)
		}
		slots = len(g.mem) / groSlotSize
		s := &r.r
		s.grow(slots)
		s.ready = 0
		for i := 0; i < slots; i++ {
			s.set(i, g.mem[i*groSlotSize:(i+1)*groSlotSize], r.nameLen())
			s.hs[i].Hdr.Control = &g.oob[i*groOOBSize]
			s.hs[i].Hdr.SetControllen(groOOBSize)
		}
		s.cnt = slots
		s.n, s.err = 0, nil
		s.waited, s.gro = false, true
		rerr := rc.Read(s.oneFn)
		s.one, s.gro = s.waited && s.n == 1, false // as in readCopy
		if rerr != nil {
			return 0, 0, 0, 0, rerr
		}
		if s.err != nil {
			return 0, 0, 0, 0, s.err
		}
		calls = 1
		g.pend, g.head = g.pend[:0], 0
		for i := 0; i < s.n; i++ {
			h := &s.hs[i]
			ln, base := int(h.Len), i*groSlotSize
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				ntrunc++
			}
			addr := r.parse(&s.names[i])
			oob := g.oob[i*groOOBSize : i*groOOBSize+min(int(h.Hdr.Controllen), groOOBSize)]
			seg := groSegment(oob)
			if seg <= 0 || seg >= ln {
				g.pend = append(g.pend, groDatagram{base, ln, addr})
				continue
			}
			g.msgs.Add(1)
			for off := 0; off < ln; off += seg {
				g.pend = append(g.pend, groDatagram{base + off, min(seg, ln-off), addr})
			}
		}
	}
	for n < len(bufs) && g.head < len(g.pend) {
		d := g.pend[g.head]
		g.head++
		bufs[n] = g.mem[d.off : d.off+d.n : d.off+d.n]
		sizes[n], addrs[n] = d.n, d.addr
		nbytes += d.n
		n++
	}
	return n, nbytes, ntrunc, calls, nil
}

// setGROMode turns UDP_GRO on or off for good, without the automatic switch
// (tests and comparisons). It must be called before any traffic arrives.
func (r *rawIO) setGROMode(rc syscall.RawConn, on bool) error {
	r.gr.auto = false
	if !on && !r.gr.on.Load() {
		return nil
	}
	if err := setGRO(rc, on); err != nil {
		return err
	}
	r.gr.on.Store(on)
	return nil
}

func (r *rawIO) groAvailable() bool { return r != nil && r.gr.avail }

// setDontFragment makes the kernel send every datagram with the IP
// don't-fragment bit and never fragment it locally: IP_PMTUDISC_PROBE (and
// IPV6_PMTUDISC_PROBE on an AF_INET6 socket, for both families of a
// dual-stack one). A datagram larger than the route's device MTU then fails
// with EMSGSIZE instead of leaving in fragments, and one larger than a link
// further on is dropped there: what datagram size discovery (package
// reliable) needs, since a probe that arrived in fragments would confirm a
// size the path does not carry whole. The kernel's path MTU cache is ignored
// (PROBE, not DO): discovery is the transport's own, after RFC 8899.
func setDontFragment(rc syscall.RawConn, v6 bool) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		f := int(fd)
		ok = unix.SetsockoptInt(f, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE) == nil
		if v6 {
			ok = unix.SetsockoptInt(f, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE) == nil
		}
	})
	return ok
}
