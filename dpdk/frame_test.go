package dpdk

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

var (
	macA = macAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = macAddr{0x02, 0, 0, 0, 0, 0xb}
	ipA  = netip.MustParseAddrPort("10.9.0.1:4000")
	ipB  = netip.MustParseAddrPort("10.9.0.2:5000")
)

func udpFrame(payload []byte, offload bool) []byte {
	b := make([]byte, udpOverhead+len(payload)+minFrameLen)
	h := udpHeader{srcMAC: macA, dstMAC: macB, src: ipA, dst: ipB, id: 7, offload: offload}
	return b[:encodeUDP(b, &h, payload)]
}

// naiveChecksum is RFC 1071 byte pair by byte pair, for comparison.
func naiveChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestChecksumMatchesNaive(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		if got, want := ^csumFold(csumPartial(b, 0)), naiveChecksum(b); got != want {
			t.Fatalf("len %d: checksum %#04x, naive %#04x", n, got, want)
		}
	}
}

func TestUDPRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 17, 18, 19, 100, 1471, 1472} {
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(i*7 + size)
		}
		fr := udpFrame(payload, false)
		if len(fr) < minFrameLen {
			t.Fatalf("size %d: frame %d bytes, shorter than %d", size, len(fr), minFrameLen)
		}
		var f frameInfo
		if r := parseFrame(fr, &f, csumVerify, csumVerify); r != dropNone {
			t.Fatalf("size %d: parse: %v", size, r)
		}
		if f.kind != kindUDP || f.src != ipA || f.dst != ipB || f.srcMAC != macA || f.dstMAC != macB {
			t.Fatalf("size %d: parsed %+v", size, f)
		}
		if got := fr[f.payloadOff : f.payloadOff+f.payloadLen]; !bytes.Equal(got, payload) {
			t.Fatalf("size %d: payload differs", size)
		}
		// The IPv4 header checksum verifies; the UDP checksum verifies.
		if c := naiveChecksum(fr[ethHdrLen : ethHdrLen+ipv4HdrLen]); c != 0 {
			t.Fatalf("size %d: IPv4 header checksum residue %#04x", size, c)
		}
	}
}

func TestUDPOffloadLeavesPseudoHeader(t *testing.T) {
	fr := udpFrame([]byte("hello"), true)
	ip := fr[ethHdrLen:]
	if ip[10] != 0 || ip[11] != 0 {
		t.Fatalf("offload: IPv4 checksum %#x, want 0 for the device to fill", ip[10:12])
	}
	want := csumFold(pseudoHeaderSum(ip[12:16], ip[16:20], udpHdrLen+5))
	if got := binary.BigEndian.Uint16(ip[26:28]); got != want {
		t.Fatalf("offload: UDP checksum field %#04x, want pseudo-header sum %#04x", got, want)
	}
	var f frameInfo
	if r := parseFrame(fr, &f, csumGood, csumGood); r != dropNone {
		t.Fatalf("device-verified parse: %v", r)
	}
}

func TestParseRejects(t *testing.T) {
	good := udpFrame([]byte("0123456789abcdefghijklmnopqrstuvwxyz"), false)
	mut := func(f func(b []byte)) []byte {
		b := bytes.Clone(good)
		f(b)
		return b
	}
	fixIPCsum := func(b []byte) {
		ip := b[ethHdrLen : ethHdrLen+ipv4HdrLen]
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:12], naiveChecksum(ip))
	}
	cases := []struct {
		name string
		b    []byte
		want dropReason
	}{
		{"ipv6", mut(func(b []byte) { binary.BigEndian.PutUint16(b[12:], etherTypeIPv6) }), dropIPv6},
		{"vlan", mut(func(b []byte) { binary.BigEndian.PutUint16(b[12:], etherTypeVLAN) }), dropEtherType},
		{"version", mut(func(b []byte) { b[14] = 0x65 }), dropBadIPHeader},
		{"ihl", mut(func(b []byte) { b[14] = 0x44 }), dropBadIPHeader},
		{"ip checksum", mut(func(b []byte) { b[14+8]-- }), dropBadIPChecksum},
		{"fragment", mut(func(b []byte) { b[14+6] = 0x20; fixIPCsum(b) }), dropFragment},
		{"tcp", mut(func(b []byte) { b[14+9] = 6; fixIPCsum(b) }), dropNotUDP},
		{"udp checksum", mut(func(b []byte) { b[len(b)-1]++ }), dropBadUDPChecksum},
		{"udp length", mut(func(b []byte) { binary.BigEndian.PutUint16(b[38:], 4) }), dropBadUDPLength},
		{"udp length long", mut(func(b []byte) { binary.BigEndian.PutUint16(b[38:], 2000) }), dropBadUDPLength},
		{"total length", mut(func(b []byte) { binary.BigEndian.PutUint16(b[16:], 3000); fixIPCsum(b) }), dropTruncated},
		{"device says bad", good, dropBadUDPChecksum}, // with csumBad below
	}
	for _, c := range cases {
		var f frameInfo
		udp := csumVerify
		if c.name == "device says bad" {
			udp = csumBad
		}
		if got := parseFrame(c.b, &f, csumVerify, udp); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	// A zero UDP checksum means "none" (RFC 768) and is accepted.
	z := mut(func(b []byte) { b[40], b[41] = 0, 0 })
	var f frameInfo
	if r := parseFrame(z, &f, csumVerify, csumVerify); r != dropNone {
		t.Errorf("zero UDP checksum: %v", r)
	}
}

func TestEveryPrefixRejected(t *testing.T) {
	frames := map[string][]byte{"udp": udpFrame([]byte("payload!"), false)}
	arp := make([]byte, minFrameLen)
	encodeARP(arp, arpOpRequest, macA, broadcastMAC, macA, ipA.Addr(), macAddr{}, ipB.Addr())
	frames["arp"] = arp[:ethHdrLen+arpLen]
	for name, fr := range frames {
		// The UDP frame carries 8+42=50 bytes; padding to 60 is optional.
		end := len(fr)
		if name == "udp" {
			end = udpOverhead + 8
		}
		for n := 0; n < end; n++ {
			var f frameInfo
			if r := parseFrame(fr[:n], &f, csumVerify, csumVerify); r == dropNone {
				t.Fatalf("%s: prefix of %d/%d bytes accepted", name, n, end)
			}
		}
	}
}

func TestARPRoundTrip(t *testing.T) {
	b := make([]byte, minFrameLen)
	n := encodeARP(b, arpOpReply, macA, macB, macA, ipA.Addr(), macB, ipB.Addr())
	if n != minFrameLen {
		t.Fatalf("ARP frame length %d, want %d", n, minFrameLen)
	}
	var f frameInfo
	if r := parseFrame(b, &f, csumVerify, csumVerify); r != dropNone {
		t.Fatalf("parse ARP: %v", r)
	}
	if f.kind != kindARP || f.arpOp != arpOpReply || f.arpSHA != macA || f.arpSPA != ipA.Addr() ||
		f.arpTHA != macB || f.arpTPA != ipB.Addr() || f.dstMAC != macB {
		t.Fatalf("parsed %+v", f)
	}
	b[ethHdrLen+7] = 9 // op 9
	if r := parseFrame(b, &f, csumVerify, csumVerify); r != dropBadARP {
		t.Fatalf("ARP op 9: %v, want bad-arp", r)
	}
}

func TestFramingAllocs(t *testing.T) {
	payload := make([]byte, 1200)
	buf := make([]byte, 2048)
	h := udpHeader{srcMAC: macA, dstMAC: macB, src: ipA, dst: ipB}
	var f frameInfo
	allocs := testing.AllocsPerRun(100, func() {
		n := encodeUDP(buf, &h, payload)
		if parseFrame(buf[:n], &f, csumVerify, csumVerify) != dropNone {
			panic("parse")
		}
	})
	if allocs != 0 {
		t.Fatalf("encode+parse allocates %.1f times", allocs)
	}
}

// FuzzParseFrame feeds arbitrary frames to the parser: it must not panic,
// and whatever it accepts must re-encode to a frame that parses the same.
func FuzzParseFrame(f *testing.F) {
	f.Add(udpFrame(nil, false))
	f.Add(udpFrame([]byte("hello raptor"), false))
	f.Add(udpFrame(bytes.Repeat([]byte{0xab}, 1400), false))
	f.Add(udpFrame([]byte("offloaded"), true))
	arp := make([]byte, minFrameLen)
	encodeARP(arp, arpOpRequest, macA, broadcastMAC, macA, ipA.Addr(), macAddr{}, ipB.Addr())
	f.Add(arp)
	f.Fuzz(func(t *testing.T, b []byte) {
		var fi frameInfo
		if parseFrame(b, &fi, csumVerify, csumVerify) != dropNone {
			return
		}
		out := make([]byte, max(udpOverhead+len(b), minFrameLen))
		var n int
		switch fi.kind {
		case kindUDP:
			if !fi.src.Addr().Is4() || !fi.dst.Addr().Is4() {
				t.Fatalf("parsed non-IPv4 addresses %v %v", fi.src, fi.dst)
			}
			if fi.payloadOff+fi.payloadLen > len(b) {
				t.Fatalf("payload [%d:+%d] beyond frame of %d", fi.payloadOff, fi.payloadLen, len(b))
			}
			h := udpHeader{srcMAC: fi.srcMAC, dstMAC: fi.dstMAC, src: fi.src, dst: fi.dst}
			n = encodeUDP(out, &h, b[fi.payloadOff:fi.payloadOff+fi.payloadLen])
		case kindARP:
			n = encodeARP(out, fi.arpOp, fi.srcMAC, fi.dstMAC, fi.arpSHA, fi.arpSPA, fi.arpTHA, fi.arpTPA)
		default:
			t.Fatalf("accepted frame of kind %d", fi.kind)
		}
		var again frameInfo
		if r := parseFrame(out[:n], &again, csumVerify, csumVerify); r != dropNone {
			t.Fatalf("re-encoded frame rejected: %v", r)
		}
		if fi.kind == kindUDP {
			if again.src != fi.src || again.dst != fi.dst || !bytes.Equal(out[again.payloadOff:again.payloadOff+again.payloadLen], b[fi.payloadOff:fi.payloadOff+fi.payloadLen]) {
				t.Fatalf("re-encoded UDP differs: %+v vs %+v", again, fi)
			}
		} else if again.arpOp != fi.arpOp || again.arpSPA != fi.arpSPA || again.arpTPA != fi.arpTPA || again.arpSHA != fi.arpSHA {
			t.Fatalf("re-encoded ARP differs: %+v vs %+v", again, fi)
		}
	})
}
