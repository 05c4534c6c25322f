package schema

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
)

// avroCases cover every Avro type, both union layouts (bare and tagged) and
// recursion.
var avroCases = []struct {
	name, schema string
	value        any
}{
	{"user", userV1, sampleV1()},
	{"null", `"null"`, nil},
	{"bool", `"boolean"`, true},
	{"int min", `"int"`, math.MinInt32},
	{"long max", `"long"`, int64(math.MaxInt64)},
	{"long min", `"long"`, int64(math.MinInt64)},
	{"float", `"float"`, float32(-0.5)},
	{"double", `"double"`, math.Pi},
	{"string", `"string"`, "héllo"},
	{"empty bytes", `"bytes"`, []byte{}},
	{"fixed", `{"type":"fixed","name":"F","size":3}`, []byte{0, 1, 2}},
	{"enum", `{"type":"enum","name":"E","symbols":["X","Y","Z"]}`, "Z"},
	{"empty array", `{"type":"array","items":"int"}`, []any{}},
	{"array of nulls", `{"type":"array","items":"null"}`, []any{nil, nil, nil}},
	{"map", `{"type":"map","values":{"type":"array","items":"string"}}`, map[string]any{"k": []any{"a", "b"}, "": []any{}}},
	{"nullable null", `["null","string"]`, nil},
	{"nullable string", `["null","string"]`, "s"},
	{"tagged int long", `["int","long"]`, int64(1) << 40},
	{"tagged records", `[{"type":"record","name":"A","fields":[{"name":"x","type":"int"}]},{"type":"record","name":"B","fields":[{"name":"y","type":"string"}]}]`, map[string]any{"y": "b"}},
	{"recursive", `{"type":"record","name":"L","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}`,
		map[string]any{"v": 1, "next": map[string]any{"v": 2, "next": map[string]any{"v": 3, "next": nil}}}},
	{"empty record", `{"type":"record","name":"Z","fields":[]}`, map[string]any{}},
}

// TestAvroAgainstHamba: what AppendAvro writes, hamba/avro (a stock Avro
// implementation) reads and writes back byte for byte; what it writes,
// DecodeAvro reads as the msgpack path decodes the same value.
func TestAvroAgainstHamba(t *testing.T) {
	for _, tc := range avroCases {
		t.Run(tc.name, func(t *testing.T) {
			s := MustParse(tc.schema)
			ours, err := s.AppendAvro(nil, tc.value)
			if err != nil {
				t.Fatal(err)
			}
			var generic any
			if err := avro.Unmarshal(s.Avro(), ours, &generic); err != nil {
				t.Fatalf("hamba cannot read %x: %v", ours, err)
			}
			theirs, err := avro.Marshal(s.Avro(), generic)
			if err != nil {
				t.Fatalf("hamba cannot write back %#v: %v", generic, err)
			}
			// Maps of several entries come out in Go's map order, on both sides.
			if unordered := tc.name == "user" || tc.name == "map"; !unordered && !bytes.Equal(theirs, ours) {
				t.Fatalf("hamba writes %x, we write %x", theirs, ours)
			}
			got, err := s.DecodeAvro(theirs)
			if err != nil {
				t.Fatalf("decode hamba's %x: %v", theirs, err)
			}
			mp, err := s.Encode(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			want, err := s.Decode(mp)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %#v, want %#v", got, want)
			}
			// And our transcoders invert each other on canonical bodies.
			back, err := s.AvroToMsgpack(nil, ours)
			if err != nil {
				t.Fatal(err)
			}
			again, err := s.MsgpackToAvro(nil, back)
			if err != nil || !bytes.Equal(again, ours) {
				t.Fatalf("msgpack %x -> avro %x %v, want %x", back, again, err, ours)
			}
		})
	}
}

// TestAvroRejects: malformed Avro bodies are *DecodeError naming what
// failed, never a panic or an allocation the input does not pay for.
func TestAvroRejects(t *testing.T) {
	cases := []struct {
		name, schema string
		body         []byte
		truncated    bool
	}{
		{"empty int", `"int"`, nil, true},
		{"int overflow", `"int"`, []byte{0xfe, 0xff, 0xff, 0xff, 0x1f}, false},
		{"varint too long", `"long"`, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, false},
		{"bool 2", `"boolean"`, []byte{2}, false},
		{"short float", `"float"`, []byte{0, 0}, true},
		{"string longer than input", `"string"`, []byte{0x80, 0x80, 0x80, 0x80, 0x20}, true},
		{"negative length", `"bytes"`, []byte{0x01}, true},
		{"bad utf8", `"string"`, []byte{0x02, 0xff}, false},
		{"enum index", `{"type":"enum","name":"E","symbols":["A"]}`, []byte{0x02}, false},
		{"union branch", `["null","int"]`, []byte{0x04}, false},
		{"array count beyond input", `{"type":"array","items":"int"}`, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, true},
		{"too many nulls", `{"type":"array","items":"null"}`, []byte{0x80, 0x80, 0x80, 0x80, 0x10}, false},
		{"unterminated array", `{"type":"array","items":"int"}`, []byte{0x02, 0x02}, true},
		{"trailing", `"int"`, []byte{0x02, 0x00}, false},
		{"deep recursion", `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`, bytes.Repeat([]byte{0x02}, 200), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := MustParse(tc.schema).DecodeAvro(tc.body)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%x: %v, want *DecodeError", tc.body, err)
			}
			if errors.Is(err, ErrTruncated) != tc.truncated {
				t.Fatalf("%x: %v, truncated=%v", tc.body, err, tc.truncated)
			}
		})
	}
}
