package rafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestEncodePayload(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"text as is", []byte("hello, world"), "hello, world"},
		{"empty", []byte{}, ""},
		{"nil", nil, ""},
		{"multibyte UTF-8 as is", []byte("grüße 🦖"), "grüße 🦖"},
		{"invalid UTF-8 in base64", []byte{0xff, 0xfe, 'a'}, "base64://5h"},
		{"truncated rune in base64", []byte("a\xe2\x82"), "base64:YeKC"},
		{"text starting with the marker is escaped", []byte("base64:abc"), "base64:YmFzZTY0OmFiYw=="},
		{"marker elsewhere as is", []byte("x base64:abc"), "x base64:abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EncodePayload(tc.in)
			if got != tc.want {
				t.Fatalf("EncodePayload(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Fatalf("EncodePayload(%q) = %q is not valid UTF-8", tc.in, got)
			}
			back, err := DecodePayload(got)
			if err != nil || !bytes.Equal(back, tc.in) {
				t.Fatalf("DecodePayload(%q) = %q, %v; want %q", got, back, err, tc.in)
			}
		})
	}
}

func TestDecodePayloadRejects(t *testing.T) {
	for _, in := range []string{"base64:!!!", "base64:YQ", "base64:Y==="} {
		if v, err := DecodePayload(in); err == nil {
			t.Errorf("DecodePayload(%q) = %q, want an error", in, v)
		}
	}
}

func FuzzPayload(f *testing.F) {
	for _, s := range [][]byte{[]byte("hello"), {0xff, 0x00}, []byte("base64:x"), []byte(EncodePayload([]byte{0x80}))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		p := EncodePayload(v)
		if !utf8.ValidString(p) {
			t.Fatalf("EncodePayload(%q) = %q is not valid UTF-8", v, p)
		}
		back, err := DecodePayload(p)
		if err != nil || !bytes.Equal(back, v) {
			t.Fatalf("round trip of %q: %q, %v", v, back, err)
		}
		// Any string decodes or fails cleanly; what decodes re-encodes to
		// a payload that decodes the same.
		if d, err := DecodePayload(string(v)); err == nil {
			if again, err := DecodePayload(EncodePayload(d)); err != nil || !bytes.Equal(again, d) {
				t.Fatalf("re-encode of %q: %q, %v", d, again, err)
			}
		}
	})
}

func TestMessageID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		p    int32
		o    int64
		fail bool
	}{
		{in: "0-0"},
		{in: "3-1042", p: 3, o: 1042},
		{in: "2147483647-9223372036854775807", p: 2147483647, o: 9223372036854775807},
		{in: "", fail: true},
		{in: "3", fail: true},
		{in: "-1-5", fail: true},
		{in: "3--5", fail: true},
		{in: "03-5", fail: true},
		{in: "3-05", fail: true},
		{in: "+3-5", fail: true},
		{in: "2147483648-0", fail: true},
		{in: "a-b", fail: true},
		{in: "3-5-7", fail: true},
		{in: "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", fail: true}, // a Rafka broker's UUID
	} {
		p, o, err := ParseMessageID(tc.in)
		if tc.fail {
			var ia *InvalidArgumentError
			if !errors.As(err, &ia) || ia.Field != "message_id" {
				t.Errorf("ParseMessageID(%q) = %d, %d, %v; want an InvalidArgumentError on message_id", tc.in, p, o, err)
			}
			continue
		}
		if err != nil || p != tc.p || o != tc.o {
			t.Errorf("ParseMessageID(%q) = %d, %d, %v; want %d, %d", tc.in, p, o, err, tc.p, tc.o)
		}
		if got := MessageID(p, o); got != tc.in {
			t.Errorf("MessageID(%d, %d) = %q, want %q", p, o, got, tc.in)
		}
	}
}

func FuzzParseMessageID(f *testing.F) {
	for _, s := range []string{MessageID(0, 0), MessageID(7, 123456), "x-y", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, o, err := ParseMessageID(s)
		if err != nil {
			return
		}
		if p < 0 || o < 0 || MessageID(p, o) != s {
			t.Fatalf("ParseMessageID(%q) = %d, %d; MessageID gives %q", s, p, o, MessageID(p, o))
		}
	})
}

// batch encodes a Kafka record batch with firstTimestamp ts, as a broker
// stores it.
func batch(ts int64, n int) []byte {
	rb := kmsg.NewRecordBatch()
	rb.Magic = 2
	rb.FirstTimestamp = ts
	rb.MaxTimestamp = ts + int64(n)
	rb.LastOffsetDelta = int32(n - 1)
	rb.NumRecords = int32(n)
	rb.Records = bytes.Repeat([]byte{0}, 10*n)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(b)-12)) // Length counts what follows it
	return b
}

func TestFirstTimestamp(t *testing.T) {
	ts := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).UnixMilli()
	b := batch(ts, 3)
	got, err := firstTimestamp(b)
	if err != nil || got != ts {
		t.Fatalf("firstTimestamp = %d, %v; want %d", got, err, ts)
	}
	// Two batches: the first one's timestamp.
	if got, err := firstTimestamp(append(batch(ts-5, 1), b...)); err != nil || got != ts-5 {
		t.Fatalf("firstTimestamp of two batches = %d, %v; want %d", got, err, ts-5)
	}
	for n := 0; n < 61; n++ {
		if _, err := firstTimestamp(b[:n]); err == nil {
			t.Fatalf("firstTimestamp accepted a %d-byte prefix of a batch", n)
		}
	}
	bad := bytes.Clone(b)
	bad[16] = 1
	if _, err := firstTimestamp(bad); err == nil || !strings.Contains(err.Error(), "magic 1") {
		t.Fatalf("firstTimestamp of magic 1: %v, want a magic error", err)
	}
}

func FuzzFirstTimestamp(f *testing.F) {
	f.Add(batch(1764576000000, 1))
	f.Add(batch(0, 5))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := firstTimestamp(b)
		if err != nil {
			return
		}
		var rb kmsg.RecordBatch
		if rb.ReadFrom(b) == nil && rb.FirstTimestamp != ts {
			t.Fatalf("firstTimestamp = %d, kmsg reads %d", ts, rb.FirstTimestamp)
		}
	})
}
