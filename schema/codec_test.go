package schema

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

const userV1 = `{"type":"record","name":"User","namespace":"raptor.test","fields":[
 {"name":"id","type":"int"},
 {"name":"name","type":"string"},
 {"name":"score","type":"float"},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"long"}},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}},
 {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
 {"name":"blob","type":"bytes"},
 {"name":"email","type":["null","string"],"default":null},
 {"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"zip","type":"int"}]}},
 {"name":"legacy","type":"string","default":"x"}
]}`

// userV2 evolves userV1: promotions (id int->long, score float->double,
// name string->bytes), a rename through an alias (email->mail), a removed
// field (legacy), added fields with defaults (age, nick, where, flags), an enum
// symbol added (D) and a nested record field added with a default.
const userV2 = `{"type":"record","name":"User","namespace":"raptor.test","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"bytes"},
 {"name":"score","type":"double"},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"double"}},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C","D"]}},
 {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
 {"name":"blob","type":"string"},
 {"name":"mail","aliases":["email"],"type":["null","string"],"default":null},
 {"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"zip","type":"int"},{"name":"country","type":"string","default":"FR"}]}},
 {"name":"age","type":"int","default":42},
 {"name":"nick","type":["null","string"],"default":null},
 {"name":"where","type":{"type":"record","name":"Geo","fields":[{"name":"lat","type":"double","default":1.5}]},"default":{}},
 {"name":"flags","type":{"type":"array","items":"boolean"},"default":[true,false]}
]}`

func sampleV1() map[string]any {
	return map[string]any{
		"id": 7, "name": "ada", "score": float32(1.25),
		"tags":    []string{"x", "y"},
		"attrs":   map[string]int64{"a": 1, "b": 1 << 40},
		"kind":    "B",
		"hash":    []byte{1, 2, 3, 4},
		"blob":    []byte("raw"),
		"email":   "ada@example.org",
		"address": map[string]any{"city": "Paris", "zip": 75001},
		"legacy":  "old",
	}
}

func TestRoundTripSameSchema(t *testing.T) {
	s := MustParse(userV1)
	body, err := s.Encode(sampleV1())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": int32(7), "name": "ada", "score": float32(1.25),
		"tags":    []any{"x", "y"},
		"attrs":   map[string]any{"a": int64(1), "b": int64(1 << 40)},
		"kind":    "B",
		"hash":    []byte{1, 2, 3, 4},
		"blob":    []byte("raw"),
		"email":   "ada@example.org",
		"address": map[string]any{"city": "Paris", "zip": int32(75001)},
		"legacy":  "old",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
	// Encoding is deterministic and re-encoding the decoded value is stable.
	again, err := s.Encode(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, body) {
		t.Fatalf("re-encoding differs:\n%x\n%x", again, body)
	}
}

func TestResolveV1ToV2(t *testing.T) {
	w, r := MustParse(userV1), MustParse(userV2)
	body, err := w.Encode(sampleV1())
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewResolver(w, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": int64(7), "name": []byte("ada"), "score": float64(1.25),
		"tags":    []any{"x", "y"},
		"attrs":   map[string]any{"a": float64(1), "b": float64(1 << 40)},
		"kind":    "B",
		"hash":    []byte{1, 2, 3, 4},
		"blob":    "raw",
		"mail":    "ada@example.org",
		"address": map[string]any{"city": "Paris", "zip": int32(75001), "country": "FR"},
		"age":     int32(42),
		"nick":    nil,
		"where":   map[string]any{"lat": 1.5},
		"flags":   []any{true, false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

func TestResolveV2ToV1(t *testing.T) {
	w, r := MustParse(userV2), MustParse(userV1)
	v2 := map[string]any{
		"id": int64(9), "name": []byte("bob"), "score": 2.5,
		"tags": []any{}, "attrs": map[string]any{"k": 3.0},
		"kind": "C", "hash": []byte("abcd"), "blob": "s",
		"mail": nil, "address": map[string]any{"city": "Lyon", "zip": 69000, "country": "FR"},
		"age": 1, "nick": "b", "where": map[string]any{"lat": 2.0}, "flags": []any{},
	}
	body, err := w.Encode(v2)
	if err != nil {
		t.Fatal(err)
	}
	// v2 -> v1 is not resolvable: long cannot be read as int.
	_, err = NewResolver(w, r)
	var re *ResolveError
	if !errors.As(err, &re) || re.Path != "id" {
		t.Fatalf("want ResolveError naming field id, got %v", err)
	}
	if len(body) == 0 {
		t.Fatal("empty body")
	}
}

func TestResolveErrorsNameTheField(t *testing.T) {
	base := `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"x","type":"string"}]}}]}`
	tests := []struct {
		name, reader, path string
	}{
		{"missing field without default", `{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"int"}]}`, "b"},
		{"narrowing", `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`, "a"},
		{"nested", `{"type":"record","name":"R","fields":[{"name":"n","type":{"type":"record","name":"N","fields":[{"name":"x","type":"int"}]}}]}`, "n.x"},
		{"record name", `{"type":"record","name":"Other","fields":[]}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewResolver(MustParse(base), MustParse(tc.reader))
			var re *ResolveError
			if !errors.As(err, &re) {
				t.Fatalf("want *ResolveError, got %v", err)
			}
			if re.Path != tc.path {
				t.Fatalf("path %q, want %q (%v)", re.Path, tc.path, err)
			}
		})
	}
}

func TestEnumRemovedSymbol(t *testing.T) {
	w := MustParse(`{"type":"enum","name":"E","symbols":["A","B"]}`)
	noDef := MustParse(`{"type":"enum","name":"E","symbols":["A"]}`)
	withDef := MustParse(`{"type":"enum","name":"E","symbols":["A","Z"],"default":"Z"}`)
	body, err := w.Encode("B")
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewResolver(w, noDef)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Decode(body); err == nil || !strings.Contains(err.Error(), `"B"`) {
		t.Fatalf("want error naming symbol B, got %v", err)
	}
	r, err = NewResolver(w, withDef)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.Decode(body); err != nil || v != "Z" {
		t.Fatalf("got %v, %v; want Z", v, err)
	}
}

func TestUnions(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		in     any
		want   any
	}{
		{"nullable null", `["null","string"]`, nil, nil},
		{"nullable value", `["null","string"]`, "s", "s"},
		{"bare int/string", `["int","string"]`, 5, int32(5)},
		{"bare int/string str", `["int","string"]`, "x", "x"},
		{"tagged int/long", `["int","long"]`, int64(1) << 40, int64(1) << 40},
		{"tagged two records", `[{"type":"record","name":"A","fields":[{"name":"a","type":"int"}]},{"type":"record","name":"B","fields":[{"name":"b","type":"int"}]}]`,
			map[string]any{"b": 3}, map[string]any{"b": int32(3)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := MustParse(tc.schema)
			body, err := s.Encode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v want %#v", got, tc.want)
			}
		})
	}
}

func TestStructRoundTrip(t *testing.T) {
	type addr struct {
		City string `msgpack:"city"`
		Zip  int    `msgpack:"zip"`
	}
	type rec struct {
		ID      int64   `msgpack:"id"`
		Email   *string `msgpack:"email"`
		Address addr    `msgpack:"address"`
	}
	s := MustParse(`{"type":"record","name":"R","fields":[{"name":"id","type":"long"},{"name":"email","type":["null","string"]},{"name":"address","type":{"type":"record","name":"A","fields":[{"name":"city","type":"string"},{"name":"zip","type":"int"}]}}]}`)
	mail := "a@b"
	in := rec{ID: 5, Email: &mail, Address: addr{City: "Nice", Zip: 6000}}
	body, err := s.Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	res, err := NewResolver(s, s)
	if err != nil {
		t.Fatal(err)
	}
	var out rec
	if err := res.DecodeInto(body, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v want %+v", out, in)
	}
}

func TestEncodeErrors(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"e","type":{"type":"enum","name":"E","symbols":["X"]}}]}`)
	tests := []struct {
		name string
		in   any
		path string
	}{
		{"missing", map[string]any{"e": "X"}, "a"},
		{"overflow", map[string]any{"a": int64(math.MaxInt32) + 1, "e": "X"}, "a"},
		{"unknown field", map[string]any{"a": 1, "e": "X", "zz": 1}, "zz"},
		{"bad symbol", map[string]any{"a": 1, "e": "Y"}, "e"},
		{"wrong type", map[string]any{"a": "1", "e": "X"}, "a"},
		{"not a record", 5, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Encode(tc.in)
			var ee *EncodeError
			if !errors.As(err, &ee) || ee.Path != tc.path {
				t.Fatalf("want EncodeError at %q, got %v", tc.path, err)
			}
		})
	}
}

func TestDecodeHostile(t *testing.T) {
	rec := MustParse(`{"type":"record","name":"R","fields":[{"name":"s","type":"string"}]}`)
	arr := MustParse(`{"type":"array","items":"int"}`)
	recursive := MustParse(`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`)
	deep := []byte{}
	for range 200 {
		deep = append(deep, 0x81, 0xa4, 'n', 'e', 'x', 't')
	}
	deep = append(deep, 0xc0)
	tests := []struct {
		name   string
		s      *Schema
		body   []byte
		substr string
		trunc  bool
	}{
		{"empty", rec, nil, "ends", true},
		{"str32 claims 4GiB", rec, []byte{0x81, 0xa1, 's', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'}, "exceeds", true},
		{"array32 claims 4G elements", arr, []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1}, "cannot fit", true},
		{"map32 record", rec, []byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, "cannot fit", true},
		{"wrong kind", arr, []byte{0xa1, 'x'}, "want msgpack array", false},
		{"trailing", arr, []byte{0x90, 0x00}, "trailing", false},
		{"bad utf8", rec, []byte{0x81, 0xa1, 's', 0xa1, 0xff}, "UTF-8", false},
		{"int overflow", arr, []byte{0x91, 0xd3, 0x7f, 0, 0, 0, 0, 0, 0, 0}, "overflows", false},
		{"ext", arr, []byte{0xd4, 1, 1}, "want msgpack array", false},
		{"too deep", recursive, deep, "nesting deeper", false},
		{"duplicate field", rec, []byte{0x82, 0xa1, 's', 0xa0, 0xa1, 's', 0xa0}, "has 1 fields", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.Decode(tc.body)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("want *DecodeError, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("error %q lacks %q", err, tc.substr)
			}
			if errors.Is(err, ErrTruncated) != tc.trunc {
				t.Fatalf("truncated=%v, want %v (%v)", errors.Is(err, ErrTruncated), tc.trunc, err)
			}
		})
	}
}

func TestEveryPrefixRejected(t *testing.T) {
	s := MustParse(userV1)
	body, err := s.Encode(sampleV1())
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(body) {
		if _, err := s.Decode(body[:i]); err == nil {
			t.Fatalf("prefix of %d/%d bytes accepted", i, len(body))
		}
	}
}

func TestFrameHeader(t *testing.T) {
	b := AppendHeader([]byte{}, 0x01020304)
	b = append(b, 0x90)
	id, body, err := ParseHeader(b)
	if err != nil || id != 0x01020304 || !bytes.Equal(body, []byte{0x90}) {
		t.Fatalf("got %d %x %v", id, body, err)
	}
	for _, bad := range [][]byte{nil, {0}, {0, 1, 2, 3}, {1, 0, 0, 0, 1}, {0x4d, 0, 0, 0, 1}} {
		if _, _, err := ParseHeader(bad); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
	var fe *FormatError
	if _, _, err := ParseHeader([]byte{0x4d, 0, 0, 0, 1}); !errors.As(err, &fe) || fe.Got != FormatMsgpack {
		t.Fatalf("msgpack frame given to ParseHeader: %v", err)
	}
	for _, tc := range []struct {
		f  Format
		id uint32
	}{{FormatAvro, 1}, {FormatMsgpack, 1<<32 - 1}} {
		b := append(AppendFrameHeader(nil, tc.f, tc.id), 7)
		f, id, body, err := ParseFrame(b)
		if err != nil || f != tc.f || id != tc.id || !bytes.Equal(body, []byte{7}) {
			t.Fatalf("%s frame %x: %s %d %x %v", tc.f, b, f, id, body, err)
		}
	}
	if _, _, _, err := ParseFrame([]byte{0x01, 0, 0, 0, 1}); err == nil {
		t.Fatal("magic 0x01 accepted")
	}
}

// A msgpack body written by the plain msgpack library from a tagged struct
// decodes under the schema: applications may use either.
func TestPlainMsgpackInterop(t *testing.T) {
	type rec struct {
		A int32  `msgpack:"a"`
		B string `msgpack:"b"`
	}
	body, err := msgpack.Marshal(rec{A: 1, B: "x"})
	if err != nil {
		t.Fatal(err)
	}
	s := MustParse(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}`)
	got, err := s.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, map[string]any{"a": int32(1), "b": "x"}) {
		t.Fatalf("got %#v", got)
	}
}

func BenchmarkEncode(b *testing.B) {
	s := MustParse(userV1)
	v := sampleV1()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = s.AppendEncode(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeResolved(b *testing.B) {
	w, r := MustParse(userV1), MustParse(userV2)
	res, err := NewResolver(w, r)
	if err != nil {
		b.Fatal(err)
	}
	body, err := w.Encode(sampleV1())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := res.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// A length prefix claiming 4 GiB (str32, bin32, array32, map32) is rejected
// without allocating for it: the bytes allocated stay small.
func TestHugeLengthPrefixNotAllocated(t *testing.T) {
	s := MustParse(`{"type":"record","name":"R","fields":[{"name":"s","type":"string"},{"name":"b","type":"bytes"},{"name":"a","type":{"type":"array","items":"int"}},{"name":"m","type":{"type":"map","values":"int"}}]}`)
	bodies := [][]byte{
		{0x84, 0xa1, 's', 0xdb, 0xff, 0xff, 0xff, 0xff},
		{0x84, 0xa1, 's', 0xa0, 0xa1, 'b', 0xc6, 0xff, 0xff, 0xff, 0xff},
		{0x84, 0xa1, 's', 0xa0, 0xa1, 'b', 0xc4, 0x00, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff},
		{0x84, 0xa1, 's', 0xa0, 0xa1, 'b', 0xc4, 0x00, 0xa1, 'a', 0x90, 0xa1, 'm', 0xdf, 0xff, 0xff, 0xff, 0xff},
	}
	for i, body := range bodies {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			_, err := s.Decode(body)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("body %d: want ErrTruncated, got %v", i, err)
			}
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Fatalf("body %d: 100 decodes allocated %d bytes", i, grew)
		}
	}
}

// TestUnionResolution resolves unions across versions, bare and tagged.
func TestUnionResolution(t *testing.T) {
	tests := []struct {
		name           string
		writer, reader string
		in, want       any
	}{
		{"nullable int to nullable long", `["null","int"]`, `["null","long"]`, 5, int64(5)},
		{"nullable null to nullable long", `["null","int"]`, `["null","long"]`, nil, nil},
		{"tagged int/long to double", `["int","long"]`, `"double"`, int64(1) << 40, float64(1 << 40)},
		{"plain to nullable", `"string"`, `["null","string"]`, "s", "s"},
		{"int into union picks exact branch", `"int"`, `["long","int"]`, 3, int32(3)},
		{"int into union promotes", `"int"`, `["null","double"]`, 3, float64(3)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, r := MustParse(tc.writer), MustParse(tc.reader)
			body, err := w.Encode(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			res, err := NewResolver(w, r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := res.Decode(body)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v %v, want %#v", got, err, tc.want)
			}
		})
	}
	// A writer branch the reader cannot take fails when used, naming it.
	w, r := MustParse(`["null","string"]`), MustParse(`["null","int"]`)
	res, err := NewResolver(w, r)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := res.Decode([]byte{0xc0}); err != nil || v != nil {
		t.Fatalf("null branch: %v %v", v, err)
	}
	body, _ := w.Encode("x")
	var re *ResolveError
	if _, err := res.Decode(body); !errors.As(err, &re) {
		t.Fatalf("string branch: want ResolveError, got %v", err)
	}
}
