package plugin

import (
	"encoding/binary"
	"testing"
)

// countFrames is the one-shot reference for frameCounter.
func countFrames(b []byte) (frames uint64, partial, invalid bool) {
	for len(b) > 0 {
		if len(b) < 4 {
			return frames, true, false
		}
		size := int32(binary.BigEndian.Uint32(b))
		if size < 0 || size > MaxFrameSize {
			return frames, false, true
		}
		b = b[4:]
		if int64(len(b)) < int64(size) {
			return frames, true, false
		}
		b = b[size:]
		frames++
	}
	return frames, false, false
}

func frame(n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	return append(b, make([]byte, n)...)
}

func TestFrameCounter(t *testing.T) {
	var stream []byte
	for _, n := range []int{0, 1, 5, 300, 4} {
		stream = append(stream, frame(n)...)
	}
	for split := 1; split <= len(stream); split++ {
		var f frameCounter
		for i := 0; i < len(stream); i += split {
			f.feed(stream[i:min(i+split, len(stream))])
		}
		if f.frames != 5 || f.partial() || f.invalid {
			t.Fatalf("split %d: frames=%d partial=%v invalid=%v, want 5 false false", split, f.frames, f.partial(), f.invalid)
		}
	}
	for cut := 0; cut < len(stream); cut++ {
		var f frameCounter
		f.feed(stream[:cut])
		wf, wp, _ := countFrames(stream[:cut])
		if f.frames != wf || f.partial() != wp {
			t.Fatalf("prefix %d: got %d/%v want %d/%v", cut, f.frames, f.partial(), wf, wp)
		}
	}
	var f frameCounter
	f.feed([]byte("PRI * HTTP/2.0")) // gRPC preface: not Kafka framing
	if !f.invalid {
		t.Fatal("HTTP/2 preface accepted as a Kafka frame")
	}
}

func FuzzFrameCounter(f *testing.F) {
	f.Add(append(frame(3), frame(0)...), uint8(1))
	f.Add([]byte("PRI * HTTP/2.0\r\n"), uint8(3))
	f.Add(frame(70000), uint8(200))
	f.Fuzz(func(t *testing.T, b []byte, split uint8) {
		step := int(split) + 1
		var fc frameCounter
		for i := 0; i < len(b); i += step {
			fc.feed(b[i:min(i+step, len(b))])
		}
		frames, partial, invalid := countFrames(b)
		if fc.invalid != invalid || fc.frames != frames || (!invalid && fc.partial() != partial) {
			t.Fatalf("chunked %d: frames=%d partial=%v invalid=%v; one-shot %d %v %v", step, fc.frames, fc.partial(), fc.invalid, frames, partial, invalid)
		}
	})
}
