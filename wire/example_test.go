package wire_test

import (
	"fmt"

	"github.com/raptormq/raptor/wire"
)

// The byte dumps below are the worked examples of docs/PROTOCOL.md §10.

func Example_shortHeaderPacket() {
	h := wire.ShortHeader{DstID: wire.ConnID{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18}, PacketNumber: 300}
	b := h.Append(nil)
	b, _ = (&wire.AckFrame{AckDelay: 250, Ranges: []wire.AckRange{{Smallest: 95, Largest: 100}, {Smallest: 90, Largest: 92}}}).Append(b)
	b, _ = (&wire.NakFrame{Ranges: []wire.AckRange{{Smallest: 93, Largest: 94}}}).Append(b)
	b, _ = (&wire.StreamFrame{StreamID: 4, Offset: 1000, Fin: true, Data: []byte("hello")}).Append(b)
	fmt.Printf("% x\n", b)
	// Output:
	// 40 a1 b2 c3 d4 e5 f6 07 18 41 2c 02 40 64 40 fa 01 05 01 02 03 01 40 5d 01 11 04 43 e8 68 65 6c 6c 6f
}

func Example_initial() {
	h := wire.LongHeader{Version: wire.Version1,
		DstID: wire.ConnID{0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e},
		SrcID: wire.ConnID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}}
	b := wire.AppendInitialHeader(nil, h, nil)
	f := wire.CryptoFrame{Offset: 0, Data: []byte{0x01, 0x00, 0x05, 0xb5}} // a ClientHello's first bytes
	b, _ = f.Append(b)
	b = wire.PadInitial(b, 0)
	fmt.Printf("%d bytes\n% x\n", len(b), b[:32])
	// Output:
	// 1200 bytes
	// c0 52 50 54 01 5e 5e 5e 5e 5e 5e 5e 5e 11 22 33 44 55 66 77 88 00 0a 00 04 01 00 05 b5 00 00 00
}

func Example_retry() {
	h := wire.LongHeader{Version: wire.Version1,
		DstID: wire.ConnID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
		SrcID: wire.ConnID{0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99}}
	token := []byte{0, 0, 1, 0x9c, 0x6a, 0x2b, 0x3c, 0x4d} // timestamp, then 16 bytes of HMAC
	for i := range 16 {
		token = append(token, 0xf0+byte(i))
	}
	odcid := wire.ConnID{0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e} // the DstID of the Initial answered
	fmt.Printf("% x\n", wire.AppendRetry(nil, h, token, odcid))
	// Output:
	// c1 52 50 54 01 11 22 33 44 55 66 77 88 99 99 99 99 99 99 99 99 18 00 00 01 9c 6a 2b 3c 4d f0 f1 f2 f3 f4 f5 f6 f7 f8 f9 fa fb fc fd fe ff 34 2d 1d e0 91 a4 48 b0 4e 20 7d 12 a1 6f 19 4c
}

func Example_versionNegotiation() {
	fmt.Printf("% x\n", wire.AppendVersionNegotiation(nil,
		wire.ConnID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
		wire.ConnID{0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e, 0x5e}))
	// Output:
	// c3 00 00 00 00 11 22 33 44 55 66 77 88 5e 5e 5e 5e 5e 5e 5e 5e 01 52 50 54 01 48 2e 9b a1 a2 dd b1 6b 6f cb e3 d9 29 51 8f 67
}
