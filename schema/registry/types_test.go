package registry

import (
	"strings"
	"testing"
)

func mustParseType(t testing.TB, typ, text string, refs ...refText) parsed {
	t.Helper()
	p, err := schemaTypes[typ].parse(text, refs)
	if err != nil {
		t.Fatalf("%s %s: %v", typ, text, err)
	}
	return p
}

// compatCases: old and new schema, and whether the new one reads data of
// the old (backward) and the old reads data of the new (forward).
type compatCase struct {
	name              string
	old, new          string
	backward, forward bool
}

func runCompat(t *testing.T, typ string, cases []compatCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, n := mustParseType(t, typ, tc.old), mustParseType(t, typ, tc.new)
			if err := o.canRead(o); err != nil {
				t.Fatalf("old schema cannot read itself: %v", err)
			}
			if err := n.canRead(o); (err == nil) != tc.backward {
				t.Errorf("backward (new reads old): %v, want ok=%v", err, tc.backward)
			}
			if err := o.canRead(n); (err == nil) != tc.forward {
				t.Errorf("forward (old reads new): %v, want ok=%v", err, tc.forward)
			}
		})
	}
}

const jsonPerson = `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"]}`

func TestJSONSchemaCompatibility(t *testing.T) {
	closed := `{"type":"object","properties":{"name":{"type":"string"}},"additionalProperties":false}`
	runCompat(t, TypeJSON, []compatCase{
		{"same", jsonPerson, jsonPerson, true, true},
		{"optional property added to open model", jsonPerson,
			`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"nick":{"type":"string"}},"required":["name"]}`, false, true},
		{"optional property added to closed model", closed,
			`{"type":"object","properties":{"name":{"type":"string"},"nick":{"type":"string"}},"additionalProperties":false}`, true, false},
		{"required added", jsonPerson,
			`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}`, false, true},
		{"integer widened to number", jsonPerson,
			`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"number"}},"required":["name"]}`, true, false},
		{"type changed", jsonPerson,
			`{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"string"}},"required":["name"]}`, false, false},
		{"enum value added", `{"enum":["a","b"]}`, `{"enum":["a","b","c"]}`, true, false},
		{"maxLength tightened", `{"type":"string","maxLength":10}`, `{"type":"string","maxLength":5}`, false, true},
		{"minimum loosened", `{"type":"number","minimum":5}`, `{"type":"number","minimum":0}`, true, false},
		{"items type changed", `{"type":"array","items":{"type":"string"}}`, `{"type":"array","items":{"type":"integer"}}`, false, false},
		{"closed", jsonPerson, `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"],"additionalProperties":false}`, false, true},
		{"anyOf branch added", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}`, true, false},
		{"ref to definition", `{"$defs":{"n":{"type":"string"}},"type":"object","properties":{"a":{"$ref":"#/$defs/n"}}}`,
			`{"$defs":{"n":{"type":"integer"}},"type":"object","properties":{"a":{"$ref":"#/$defs/n"}}}`, false, false},
		{"recursive", `{"$defs":{"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}`,
			`{"$defs":{"node":{"type":"object","properties":{"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}`, true, true},
		{"recursive field type changed", `{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}`,
			`{"$defs":{"node":{"type":"object","properties":{"v":{"type":"string"},"next":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}`, false, false},
		{"anyOf beside a type", `{"type":"object","anyOf":[{"required":["a"]},{"required":["b"]}]}`,
			`{"type":"object","anyOf":[{"required":["a"]},{"required":["b"]}]}`, true, true},
		{"anyOf branch made stricter", `{"type":"object","anyOf":[{"required":["a"]},{"required":["b"]}]}`,
			`{"type":"object","anyOf":[{"required":["a","c"]},{"required":["b"]}]}`, false, true},
		{"allOf flattened", `{"allOf":[{"type":"integer"},{"minimum":0}]}`, `{"type":"integer","minimum":0}`, true, true},
		{"ref with siblings", `{"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s","maxLength":3}`, `{"type":"string","maxLength":3}`, true, true},
		{"not removed", `{"type":"string","not":{"enum":["x"]}}`, `{"type":"string"}`, true, false},
		{"bound on another type", `{"type":"integer"}`, `{"type":"integer","maxLength":3}`, true, true},
		{"oneOf to anyOf", `{"oneOf":[{"type":"string"},{"type":"null"}]}`, `{"anyOf":[{"type":"null"},{"type":"string"}]}`, true, true},
	})
}

const protoOrder = `syntax = "proto3";
package acme;
message Order {
  int64 id = 1;
  string note = 2;
  repeated string tags = 3;
  Kind kind = 4;
  enum Kind { A = 0; B = 1; }
}`

func TestProtobufCompatibility(t *testing.T) {
	repl := func(old, new string) string { return strings.Replace(protoOrder, old, new, 1) }
	runCompat(t, TypeProtobuf, []compatCase{
		{"same", protoOrder, protoOrder, true, true},
		{"field added", protoOrder, repl("Kind kind = 4;", "Kind kind = 4; double price = 5;"), true, true},
		{"field removed", protoOrder, repl("string note = 2;", ""), true, true},
		{"int64 to uint64 (same wire type)", protoOrder, repl("int64 id = 1;", "uint64 id = 1;"), true, true},
		{"int64 to string", protoOrder, repl("int64 id = 1;", "string id = 1;"), false, false},
		{"int64 to sint64", protoOrder, repl("int64 id = 1;", "sint64 id = 1;"), false, false},
		{"repeated to singular", protoOrder, repl("repeated string tags = 3;", "string tags = 3;"), false, false},
		{"message renamed", protoOrder, repl("message Order {", "message Purchase {"), false, false},
		{"message added", protoOrder, protoOrder + "\nmessage Extra { int32 x = 1; }", true, false},
		{"package changed", protoOrder, repl("package acme;", "package shop;"), false, false},
		{"enum type changed", protoOrder + "\nenum Other { X = 0; }", repl("Kind kind = 4;", "Other kind = 4;") + "\nenum Other { X = 0; }", false, false},
		{"two fields moved into a oneof", protoOrder, repl("int64 id = 1;\n  string note = 2;", "oneof key { int64 id = 1; string note = 2; }"), false, true},
		{"one field moved into a new oneof", protoOrder, repl("string note = 2;", "oneof n { string note = 2; }"), true, true},
	})
	p2 := `syntax = "proto2"; message M { optional int32 a = 1; }`
	runCompat(t, TypeProtobuf, []compatCase{
		{"required added", p2, `syntax = "proto2"; message M { optional int32 a = 1; required int32 b = 2; }`, false, false},
		{"optional made required", p2, `syntax = "proto2"; message M { required int32 a = 1; }`, false, true},
	})
}

// TestProtobufIdentity: comments and layout do not change a .proto's
// identity; a field does.
func TestProtobufIdentity(t *testing.T) {
	a, err := protoIdentity(protoOrder)
	if err != nil {
		t.Fatal(err)
	}
	b, err := protoIdentity("// an order\n" + strings.ReplaceAll(protoOrder, "\n", "\n\n  "))
	if err != nil || a != b {
		t.Fatalf("layout changed identity: %v", err)
	}
	c, err := protoIdentity(strings.Replace(protoOrder, "string note = 2;", "string memo = 2;", 1))
	if err != nil || c == a {
		t.Fatalf("a renamed field kept identity: %v", err)
	}
	if _, err := protoIdentity("message {"); err == nil {
		t.Fatal("broken .proto has an identity")
	}
}

// FuzzSchemaTypes: every text a type parser accepts is compatible with
// itself, and its identity is stable. The first byte picks the type.
func FuzzSchemaTypes(f *testing.F) {
	types := []string{TypeAvro, TypeJSON, TypeProtobuf}
	for i, s := range []string{sV2, jsonPerson, protoOrder} {
		f.Add(append([]byte{byte(i)}, s...))
	}
	f.Add(append([]byte{1}, `{"$defs":{"n":{"anyOf":[{"$ref":"#/$defs/n"},{"type":"null"}]}},"$ref":"#/$defs/n","not":{"enum":[1]}}`...))
	f.Add(append([]byte{1}, `{"type":"object","anyOf":[{"required":["a"]},{"required":["b"]}],"properties":{"a":{"not":{"const":1}},"b":{"allOf":[{"type":"integer"},{"maximum":3}]}},"additionalProperties":{"type":"string"}}`...))
	f.Add(append([]byte{2}, `syntax="proto2"; message A { optional group G = 1 { required int32 x = 2; } map<string, A> m = 3; oneof o { int32 y = 4; } }`...))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > 4096 {
			return
		}
		typ := types[int(in[0])%len(types)]
		text := string(in[1:])
		p, err := schemaTypes[typ].parse(text, nil)
		if err != nil {
			return
		}
		// Two separate parses: the checkers compare structure, not pointers.
		again, err := schemaTypes[typ].parse(text, nil)
		if err != nil {
			t.Fatalf("%s schema %q parses once only: %v", typ, text, err)
		}
		if err := p.canRead(again); err != nil && !strings.Contains(err.Error(), "nested deeper than") && !strings.Contains(err.Error(), "more than 100000 steps") {
			t.Fatalf("%s schema %q is not compatible with itself: %v", typ, text, err)
		}
		id1, err1 := schemaTypes[typ].identity(text)
		id2, err2 := schemaTypes[typ].identity(text)
		if err1 != nil || err2 != nil || id1 != id2 {
			t.Fatalf("identity of a parsed %s schema: %v %v", typ, err1, err2)
		}
	})
}
