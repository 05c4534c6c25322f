package dpdk

// Ethernet II / IPv4 / UDP / ARP framing, pure Go, no allocation. The poll
// loop parses received frames in place (inside mbuf memory); WriteBatch encodes
// frames in place. Nothing here touches DPDK, so it builds without cgo and is
// fuzzed by the default test run.

import (
	"encoding/binary"
	"net/netip"
)

// macAddr is an Ethernet (EUI-48) address.
type macAddr [6]byte

var broadcastMAC = macAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats m as aa:bb:cc:dd:ee:ff.
func (m macAddr) String() string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[x>>4], hex[x&0xf])
	}
	return string(b)
}

const (
	ethHdrLen  = 14
	ipv4HdrLen = 20
	udpHdrLen  = 8
	arpLen     = 28
	// udpOverhead is the Ethernet+IPv4+UDP header size of every datagram frame.
	udpOverhead = ethHdrLen + ipv4HdrLen + udpHdrLen
	// minFrameLen is the minimum Ethernet frame length without FCS; shorter
	// frames are zero-padded on transmit.
	minFrameLen = 60

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100

	ipProtoUDP = 17
	ipv4TTL    = 64
	ipv4FlagDF = 0x4000

	arpOpRequest = 1
	arpOpReply   = 2
)

// dropReason classifies a received frame that is not delivered, or a
// datagram that is not sent. Each has a counter in DropStats.
type dropReason uint8

const (
	dropNone           dropReason = iota
	dropTruncated                 // frame shorter than its headers claim
	dropNotForUs                  // destination MAC, IP or UDP port is not ours
	dropIPv6                      // IPv6 frame (not supported)
	dropEtherType                 // other EtherType (VLAN, LLDP, ...)
	dropBadIPHeader               // IPv4 version/IHL/length invalid
	dropBadIPChecksum             // IPv4 header checksum wrong
	dropFragment                  // IPv4 fragment (Raptor never fragments)
	dropNotUDP                    // IPv4 protocol other than UDP
	dropBadUDPChecksum            // UDP checksum wrong
	dropBadUDPLength              // UDP length field inconsistent
	dropBadARP                    // malformed ARP or non-Ethernet/IPv4 ARP
	dropMultiSegment              // chained mbuf (jumbo frame split over mbufs)
	dropRxQueueFull               // handoff queue to ReadBatch full
	dropARPQueueFull              // datagrams waiting for ARP exceeded the bound
	dropARPUnresolved             // ARP resolution timed out
	dropTxQueueFull               // device transmit queue stayed full
	dropNoMbuf                    // mbuf pool exhausted on transmit
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"none", "truncated", "not-for-us", "ipv6", "ethertype", "bad-ip-header", "bad-ip-checksum",
	"fragment", "not-udp", "bad-udp-checksum", "bad-udp-length", "bad-arp", "multi-segment",
	"rx-queue-full", "arp-queue-full", "arp-unresolved", "tx-queue-full", "no-mbuf",
}

// String names the reason as in logs and metrics.
func (r dropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// frameKind says what parseFrame found.
type frameKind uint8

const (
	kindUDP frameKind = iota + 1
	kindARP
)

// frameInfo is the parse result of one received frame.
type frameInfo struct {
	kind   frameKind
	dstMAC macAddr
	srcMAC macAddr
	// UDP
	src, dst   netip.AddrPort
	payloadOff int
	payloadLen int
	// ARP (RFC 826, Ethernet/IPv4 only)
	arpOp  uint16
	arpSHA macAddr
	arpSPA netip.Addr
	arpTHA macAddr
	arpTPA netip.Addr
}

// rxCsum tells parseFrame what the device already verified.
type rxCsum uint8

const (
	csumVerify rxCsum = iota // verify in software
	csumGood                 // device verified it
	csumBad                  // device found it wrong
)

// parseFrame parses an Ethernet II frame carrying IPv4/UDP or ARP. ipCsum and
// udpCsum say whether the device checked the respective checksums. It does
// not filter by address: the caller decides what is for it. On success it
// returns dropNone and fills f.
func parseFrame(b []byte, f *frameInfo, ipCsum, udpCsum rxCsum) dropReason {
	if len(b) < ethHdrLen {
		return dropTruncated
	}
	copy(f.dstMAC[:], b[0:6])
	copy(f.srcMAC[:], b[6:12])
	switch et := binary.BigEndian.Uint16(b[12:14]); et {
	case etherTypeIPv4:
		return parseIPv4UDP(b, f, ipCsum, udpCsum)
	case etherTypeARP:
		return parseARP(b[ethHdrLen:], f)
	case etherTypeIPv6:
		return dropIPv6
	default:
		return dropEtherType
	}
}

func parseIPv4UDP(b []byte, f *frameInfo, ipCsum, udpCsum rxCsum) dropReason {
	ip := b[ethHdrLen:]
	if len(ip) < ipv4HdrLen {
		return dropTruncated
	}
	if ip[0]>>4 != 4 {
		return dropBadIPHeader
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if ihl < ipv4HdrLen || total < ihl {
		return dropBadIPHeader
	}
	if len(ip) < total {
		return dropTruncated
	}
	ip = ip[:total] // drop Ethernet padding
	switch ipCsum {
	case csumBad:
		return dropBadIPChecksum
	case csumVerify:
		if csumFold(csumPartial(ip[:ihl], 0)) != 0xffff {
			return dropBadIPChecksum
		}
	}
	if frag := binary.BigEndian.Uint16(ip[6:8]); frag&0x3fff != 0 { // MF or offset
		return dropFragment
	}
	if ip[9] != ipProtoUDP {
		return dropNotUDP
	}
	srcIP := netip.AddrFrom4([4]byte(ip[12:16]))
	dstIP := netip.AddrFrom4([4]byte(ip[16:20]))
	udp := ip[ihl:]
	if len(udp) < udpHdrLen {
		return dropTruncated
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < udpHdrLen || ulen > len(udp) {
		return dropBadUDPLength
	}
	udp = udp[:ulen]
	switch udpCsum {
	case csumBad:
		return dropBadUDPChecksum
	case csumVerify:
		if binary.BigEndian.Uint16(udp[6:8]) != 0 { // 0: sender sent no checksum (RFC 768)
			sum := pseudoHeaderSum(ip[12:16], ip[16:20], ulen)
			if csumFold(csumPartial(udp, sum)) != 0xffff {
				return dropBadUDPChecksum
			}
		}
	}
	f.kind = kindUDP
	f.src = netip.AddrPortFrom(srcIP, binary.BigEndian.Uint16(udp[0:2]))
	f.dst = netip.AddrPortFrom(dstIP, binary.BigEndian.Uint16(udp[2:4]))
	f.payloadOff = ethHdrLen + ihl + udpHdrLen
	f.payloadLen = ulen - udpHdrLen
	return dropNone
}

func parseARP(a []byte, f *frameInfo) dropReason {
	if len(a) < arpLen {
		return dropTruncated
	}
	// htype Ethernet(1), ptype IPv4, hlen 6, plen 4.
	if binary.BigEndian.Uint16(a[0:2]) != 1 || binary.BigEndian.Uint16(a[2:4]) != etherTypeIPv4 ||
		a[4] != 6 || a[5] != 4 {
		return dropBadARP
	}
	op := binary.BigEndian.Uint16(a[6:8])
	if op != arpOpRequest && op != arpOpReply {
		return dropBadARP
	}
	f.kind = kindARP
	f.arpOp = op
	copy(f.arpSHA[:], a[8:14])
	f.arpSPA = netip.AddrFrom4([4]byte(a[14:18]))
	copy(f.arpTHA[:], a[18:24])
	f.arpTPA = netip.AddrFrom4([4]byte(a[24:28]))
	return dropNone
}

// udpHeader holds what encodeUDP needs besides the payload.
type udpHeader struct {
	srcMAC, dstMAC macAddr
	src, dst       netip.AddrPort // IPv4 only
	id             uint16         // IPv4 identification
	// offload: leave the IPv4 checksum zero and put only the pseudo-header sum
	// into the UDP checksum field, as DPDK's TX checksum offload expects.
	offload bool
}

// encodeUDP writes an Ethernet/IPv4/UDP frame carrying payload into frame
// and returns its length (zero-padded to minFrameLen). frame must have room
// for max(udpOverhead+len(payload), minFrameLen) bytes; payload must fit in an
// IPv4 datagram.
func encodeUDP(frame []byte, h *udpHeader, payload []byte) int {
	n := udpOverhead + len(payload)
	copy(frame[udpOverhead:], payload)
	writeUDPHeaders(frame[:n], h)
	if n < minFrameLen {
		clear(frame[n:minFrameLen])
		n = minFrameLen
	}
	return n
}

// writeUDPHeaders fills the 42 header bytes of frame, whose payload is
// already in place at frame[udpOverhead:]; len(frame) is the unpadded length.
func writeUDPHeaders(frame []byte, h *udpHeader) {
	copy(frame[0:6], h.dstMAC[:])
	copy(frame[6:12], h.srcMAC[:])
	binary.BigEndian.PutUint16(frame[12:14], etherTypeIPv4)
	ip := frame[ethHdrLen:]
	total := len(ip)
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:4], uint16(total))
	binary.BigEndian.PutUint16(ip[4:6], h.id)
	binary.BigEndian.PutUint16(ip[6:8], ipv4FlagDF)
	ip[8] = ipv4TTL
	ip[9] = ipProtoUDP
	ip[10], ip[11] = 0, 0
	s4, d4 := h.src.Addr().As4(), h.dst.Addr().As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	udp := ip[ipv4HdrLen:]
	ulen := len(udp)
	binary.BigEndian.PutUint16(udp[0:2], h.src.Port())
	binary.BigEndian.PutUint16(udp[2:4], h.dst.Port())
	binary.BigEndian.PutUint16(udp[4:6], uint16(ulen))
	udp[6], udp[7] = 0, 0
	ph := pseudoHeaderSum(s4[:], d4[:], ulen)
	if h.offload {
		binary.BigEndian.PutUint16(udp[6:8], csumFold(ph))
		return
	}
	binary.BigEndian.PutUint16(ip[10:12], ^csumFold(csumPartial(ip[:ipv4HdrLen], 0)))
	c := ^csumFold(csumPartial(udp, ph))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
}

// encodeARP writes an ARP frame (RFC 826) into frame (at least minFrameLen
// bytes) and returns its length, minFrameLen. For a request ethDst is the
// broadcast address and tha is zero.
func encodeARP(frame []byte, op uint16, ethSrc, ethDst, sha macAddr, spa netip.Addr, tha macAddr, tpa netip.Addr) int {
	copy(frame[0:6], ethDst[:])
	copy(frame[6:12], ethSrc[:])
	binary.BigEndian.PutUint16(frame[12:14], etherTypeARP)
	a := frame[ethHdrLen:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], etherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], op)
	copy(a[8:14], sha[:])
	s4, t4 := spa.As4(), tpa.As4()
	copy(a[14:18], s4[:])
	copy(a[18:24], tha[:])
	copy(a[24:28], t4[:])
	clear(frame[ethHdrLen+arpLen : minFrameLen])
	return minFrameLen
}

// pseudoHeaderSum is the unfolded one's-complement sum of the IPv4 UDP
// pseudo-header (RFC 768).
func pseudoHeaderSum(src, dst []byte, udpLen int) uint64 {
	return uint64(binary.BigEndian.Uint32(src)) + uint64(binary.BigEndian.Uint32(dst)) +
		ipProtoUDP + uint64(udpLen)
}

// csumPartial adds b (starting at an even offset of the checksummed data) to
// the unfolded one's-complement sum (RFC 1071). Summing 32-bit words is
// equivalent modulo 0xffff and twice as fast.
func csumPartial(b []byte, sum uint64) uint64 {
	for len(b) >= 16 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:]))
		b = b[16:]
	}
	for len(b) >= 4 {
		sum += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

// csumFold folds an unfolded sum to 16 bits (not complemented).
func csumFold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
