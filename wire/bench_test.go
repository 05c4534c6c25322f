package wire_test

import (
	"testing"

	"github.com/raptormq/raptor/wire"
)

// streamBench is a full-size STREAM frame as a 1452-byte datagram carries it.
func streamBench() *wire.StreamFrame {
	return &wire.StreamFrame{StreamID: 4, Offset: 1 << 24, HasLen: true, Data: seq(1400)}
}

func BenchmarkParseStreamFrame(b *testing.B) {
	f := streamBench()
	enc := mustAppend(b, f, nil)
	var p wire.FrameParser
	b.ReportAllocs()
	b.SetBytes(int64(len(f.Data)))
	for b.Loop() {
		fr, _, err := p.ParseNext(enc)
		if err != nil || len(fr.(*wire.StreamFrame).Data) != len(f.Data) {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendStreamFrame(b *testing.B) {
	f := streamBench()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(f.Data)))
	for b.Loop() {
		var err error
		if buf, err = f.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// ackBench is an ACK of 16 ranges near packet number 2^20.
func ackBench() *wire.AckFrame {
	r := ackRanges(16)
	for i := range r {
		r[i].Smallest += 1 << 20
		r[i].Largest += 1 << 20
	}
	return &wire.AckFrame{AckDelay: 250, Ranges: r}
}

func BenchmarkParseAck(b *testing.B) {
	enc := mustAppend(b, ackBench(), nil)
	var p wire.FrameParser
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, _, err := p.ParseNext(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendAck(b *testing.B) {
	f := ackBench()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(f.Length()))
	for b.Loop() {
		var err error
		if buf, err = f.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePacket parses a short header and its STREAM, ACK and NAK frames.
func BenchmarkParsePacket(b *testing.B) {
	pkt := benchPacket(b)
	var p wire.FrameParser
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		_, n, err := wire.ParseShortHeader(pkt)
		for rest := pkt[n:]; err == nil && len(rest) > 0; rest = rest[n:] {
			_, n, err = p.ParseNext(rest)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
