package schema

import (
	"errors"
	"testing"
)

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
			if _, err := v1.Decode(again); err != nil {
				t.Fatalf("re-encoded value does not decode: %v", err)
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
