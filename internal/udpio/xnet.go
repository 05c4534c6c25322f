package udpio

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// xnetIO is the portable batch path over golang.org/x/net. Writes reuse one
// net.UDPAddr (with its own IP storage) per slot and do not allocate; reads
// allocate the source address per datagram inside x/net.
type xnetIO struct {
	p4 *ipv4.PacketConn
	p6 *ipv6.PacketConn

	rmsgs []ipv4.Message
	rbufs [][1][]byte

	wmsgs  []ipv4.Message
	wbufs  [][1][]byte
	waddrs []net.UDPAddr
	wips   [][16]byte
}

func newXNetIO(uc *net.UDPConn, v6 bool) *xnetIO {
	x := &xnetIO{}
	if v6 {
		x.p6 = ipv6.NewPacketConn(uc)
	} else {
		x.p4 = ipv4.NewPacketConn(uc)
	}
	return x
}

func (x *xnetIO) read(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (n, nbytes, ntrunc int, err error) {
	if len(x.rmsgs) < len(bufs) {
		x.rmsgs = make([]ipv4.Message, len(bufs))
		x.rbufs = make([][1][]byte, len(bufs))
	}
	ms := x.rmsgs[:len(bufs)]
	for i := range ms {
		x.rbufs[i][0] = bufs[i]
		ms[i].Buffers = x.rbufs[i][:]
		ms[i].Addr = nil
		ms[i].N, ms[i].Flags = 0, 0
	}
	if x.p6 != nil {
		n, err = x.p6.ReadBatch(ms, 0)
	} else {
		n, err = x.p4.ReadBatch(ms, 0)
	}
	if n < 0 || err != nil {
		n = 0 // x/net reports -1 from a failed recvmmsg
	}
	for i := 0; i < n; i++ {
		sizes[i] = ms[i].N
		nbytes += ms[i].N
		if ms[i].Flags&msgTrunc != 0 {
			ntrunc++
		}
		if ua, ok := ms[i].Addr.(*net.UDPAddr); ok {
			ap := ua.AddrPort()
			addrs[i] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		} else {
			addrs[i] = netip.AddrPort{}
		}
		x.rbufs[i][0] = nil // do not retain caller buffers
	}
	for i := n; i < len(ms); i++ {
		x.rbufs[i][0] = nil
	}
	return n, nbytes, ntrunc, err
}

// write sends bufs to addrs; with peer valid (a connected socket) every
// address must be peer and the messages carry none.
func (x *xnetIO) write(v6 bool, peer netip.AddrPort, bufs [][]byte, addrs []netip.AddrPort) (n, nbytes, calls int, err error) {
	if len(x.wmsgs) < len(bufs) {
		x.wmsgs = make([]ipv4.Message, len(bufs))
		x.wbufs = make([][1][]byte, len(bufs))
		x.waddrs = make([]net.UDPAddr, len(bufs))
		x.wips = make([][16]byte, len(bufs))
	}
	// Encode up to the first bad address; send that prefix; then report it.
	cnt := len(bufs)
	var encErr error
	for i := 0; i < cnt; i++ {
		if peer.IsValid() {
			if e := checkPeer(peer, addrs[i]); e != nil {
				cnt, encErr = i, e
				break
			}
			x.wbufs[i][0] = bufs[i]
			x.wmsgs[i].Buffers = x.wbufs[i][:]
			x.wmsgs[i].Addr = nil
			continue
		}
		ip, l, e := destIP(v6, addrs[i].Addr())
		if e != nil {
			cnt, encErr = i, e
			break
		}
		x.wips[i] = ip
		ua := &x.waddrs[i]
		ua.IP = x.wips[i][:l]
		ua.Port = int(addrs[i].Port())
		ua.Zone = addrs[i].Addr().Zone()
		x.wbufs[i][0] = bufs[i]
		x.wmsgs[i].Buffers = x.wbufs[i][:]
		x.wmsgs[i].Addr = ua
	}
	defer func() {
		for i := 0; i < cnt; i++ {
			x.wbufs[i][0] = nil
		}
	}()
	for n < cnt {
		var m int
		if x.p6 != nil {
			m, err = x.p6.WriteBatch(x.wmsgs[n:cnt], 0)
		} else {
			m, err = x.p4.WriteBatch(x.wmsgs[n:cnt], 0)
		}
		if m < 0 {
			m = 0
		}
		if m > 0 {
			calls++
			for i := n; i < n+m; i++ {
				nbytes += len(bufs[i])
			}
			n += m
		}
		if err != nil {
			return n, nbytes, calls, err
		}
	}
	return n, nbytes, calls, encErr
}
