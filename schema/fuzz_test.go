package schema

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// sameValue is reflect.DeepEqual for decoded values, with NaN equal to
// itself.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float32:
		y, ok := b.(float32)
		return ok && (x == y || x != x && y != y)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{userV1, userV2, `"int"`, `["null","string"]`, rec(fEnumABC),
		`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`,
		`{"type":"fixed","name":"F","size":-1}`, `{"type":"array","items":{"type":"map","values":"bytes"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		again, err := Parse(s.String())
		if err != nil {
			t.Fatalf("normalised form %q does not parse: %v", s.String(), err)
		}
		if again.Canonical() != s.Canonical() {
			t.Fatalf("canonical form changed: %q vs %q", again.Canonical(), s.Canonical())
		}
		// Resolving a schema against itself must succeed or fail cleanly.
		_, _ = NewResolver(s, s)
	})
}

// FuzzDecode feeds hostile bodies to the identity decoder and to the v1->v2
// resolver. Whatever decodes must re-encode and decode to the same value.
func FuzzDecode(f *testing.F) {
	v1, v2 := MustParse(userV1), MustParse(userV2)
	res, err := NewResolver(v1, v2)
	if err != nil {
		f.Fatal(err)
	}
	body, err := v1.Encode(sampleV1())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte{0xdb, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x8b, 0xa2, 'i', 'd', 0x01})
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := v1.Decode(body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error of type %T: %v", err, err)
			}
		} else {
			again, err := v1.Encode(v)
			if err != nil {
				t.Fatalf("decoded value does not re-encode: %v", err)
			}
			v2, err := v1.Decode(again)
			if err != nil {
				t.Fatalf("re-encoded value does not decode: %v", err)
			}
			if !sameValue(v, v2) {
				t.Fatalf("value changed through re-encoding:\n%#v\n%#v", v, v2)
			}
			if third, err := v1.Encode(v2); err != nil || !bytes.Equal(third, again) {
				t.Fatalf("encoding is not stable: %x then %x (%v)", again, third, err)
			}
		}
		if _, err := res.Decode(body); err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("resolver error of type %T: %v", err, err)
			}
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	f.Add(AppendHeader(nil, 7))
	f.Add([]byte{1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, body, err := ParseHeader(b)
		if err != nil {
			return
		}
		if got := AppendHeader(nil, id); string(append(got, body...)) != string(b) {
			t.Fatalf("re-encoding %x gives %x", b, got)
		}
	})
}

// FuzzParseFrame: every accepted frame re-encodes to the same bytes, in
// its format.
func FuzzParseFrame(f *testing.F) {
	f.Add(AppendFrameHeader(nil, FormatAvro, 7))
	f.Add(append(AppendFrameHeader(nil, FormatMsgpack, 1<<32-1), 0x80))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		format, id, body, err := ParseFrame(b)
		if err != nil {
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if got := append(AppendFrameHeader(nil, format, id), body...); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding %x gives %x", b, got)
		}
		if hid, hbody, herr := ParseHeader(b); (herr == nil) != (format == FormatAvro) || herr == nil && (hid != id || !bytes.Equal(hbody, body)) {
			t.Fatalf("ParseHeader disagrees with ParseFrame on %x: %d %x %v", b, hid, hbody, herr)
		}
	})
}

// FuzzAvro feeds hostile Avro bodies to the transcoder under every schema of
// avroCases (the first byte picks the schema). Whatever is accepted must
// decode, and go through msgpack and back to Avro without change.
func FuzzAvro(f *testing.F) {
	schemas := make([]*Schema, len(avroCases))
	for i, tc := range avroCases {
		schemas[i] = MustParse(tc.schema)
		body, err := schemas[i].AppendAvro(nil, tc.value)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(i)}, body...))
	}
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		s := schemas[int(in[0])%len(schemas)]
		body := in[1:]
		mp, err := s.AvroToMsgpack(nil, body)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		v, err := s.Decode(mp)
		if err != nil {
			t.Fatalf("accepted Avro %x gives msgpack %x that does not decode: %v", body, mp, err)
		}
		canon, err := s.MsgpackToAvro(nil, mp)
		if err != nil {
			t.Fatalf("msgpack %x does not go back to Avro: %v", mp, err)
		}
		mp2, err := s.AvroToMsgpack(nil, canon)
		if err != nil || !bytes.Equal(mp2, mp) {
			t.Fatalf("Avro %x -> msgpack %x -> Avro %x -> msgpack %x (%v)", body, mp, canon, mp2, err)
		}
		v2, err := s.DecodeAvro(canon)
		if err != nil || !sameValue(v, v2) {
			t.Fatalf("value changed: %#v then %#v (%v)", v, v2, err)
		}
	})
}

// FuzzMsgpackToAvro feeds hostile msgpack bodies to the msgpack-to-Avro
// transcoder (the first byte picks the schema): it accepts exactly what the
// msgpack decoder accepts, and its Avro output decodes to the same value.
func FuzzMsgpackToAvro(f *testing.F) {
	schemas := make([]*Schema, len(avroCases))
	for i, tc := range avroCases {
		schemas[i] = MustParse(tc.schema)
		body, err := schemas[i].Encode(tc.value)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(i)}, body...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		s := schemas[int(in[0])%len(schemas)]
		body := in[1:]
		want, derr := s.Decode(body)
		avroBody, err := s.MsgpackToAvro(nil, body)
		if (err == nil) != (derr == nil) {
			t.Fatalf("msgpack %x: transcoder says %v, decoder says %v", body, err, derr)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		got, err := s.DecodeAvro(avroBody)
		if err != nil || !sameValue(got, want) {
			t.Fatalf("msgpack %x -> Avro %x -> %#v (%v), want %#v", body, avroBody, got, err, want)
		}
	})
}
