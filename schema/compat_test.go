package schema

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func rec(fields string) string {
	return `{"type":"record","name":"T","namespace":"m","fields":[` + fields + `]}`
}

const (
	fA        = `{"name":"a","type":"int"}`
	fAlong    = `{"name":"a","type":"long"}`
	fBdef     = `{"name":"b","type":"string","default":"d"}`
	fBnodef   = `{"name":"b","type":"string"}`
	fEmail    = `{"name":"email","type":"string"}`
	fMailAlia = `{"name":"mail","aliases":["email"],"type":"string"}`
	fEnumAB   = `{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}`
	fEnumABC  = `{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}}`
)

// TestCompatibilityMatrix checks, for every level, pairs of versions that must
// be accepted or rejected. backward: the new schema reads old data; forward:
// the old schema reads new data.
func TestCompatibilityMatrix(t *testing.T) {
	pairs := []struct {
		name              string
		old, new          string
		backward, forward bool
	}{
		{"add field with default", rec(fA), rec(fA + "," + fBdef), true, true},
		{"add field without default", rec(fA), rec(fA + "," + fBnodef), false, true},
		{"remove field with default", rec(fA + "," + fBdef), rec(fA), true, true},
		{"remove field without default", rec(fA + "," + fBnodef), rec(fA), true, false},
		{"rename with alias", rec(fEmail), rec(fMailAlia), true, false},
		{"rename without alias", rec(fEmail), rec(`{"name":"mail","type":"string"}`), false, false},
		{"promote int to long", rec(fA), rec(fAlong), true, false},
		{"narrow long to int", rec(fAlong), rec(fA), false, true},
		{"enum symbol added", rec(fEnumAB), rec(fEnumABC), true, false},
		{"enum symbol removed", rec(fEnumABC), rec(fEnumAB), false, true},
		{"change type", rec(fA), rec(`{"name":"a","type":"string"}`), false, false},
		{"identical", rec(fA), rec(fA), true, true},
		{"rename record with alias", rec(fA), `{"type":"record","name":"U","namespace":"m","aliases":["m.T"],"fields":[` + fA + `]}`, true, false},
		{"nullable widened", rec(`{"name":"o","type":["null","int"],"default":null}`), rec(`{"name":"o","type":["null","long"],"default":null}`), true, false},
	}
	for _, p := range pairs {
		for _, level := range Levels {
			want := true
			switch level {
			case Backward, BackwardTransitive:
				want = p.backward
			case Forward, ForwardTransitive:
				want = p.forward
			case Full, FullTransitive:
				want = p.backward && p.forward
			}
			t.Run(fmt.Sprintf("%s/%s", p.name, level), func(t *testing.T) {
				err := CheckCompatibility(level, MustParse(p.new), []Versioned{{1, MustParse(p.old)}})
				if got := err == nil; got != want {
					t.Fatalf("accepted=%v, want %v (err: %v)", got, want, err)
				}
				var ie *IncompatibleError
				if err != nil && (!errors.As(err, &ie) || ie.Level != level || len(ie.Messages) == 0) {
					t.Fatalf("want *IncompatibleError for %s, got %#v", level, err)
				}
			})
		}
	}
}

// TestTransitiveOverThreeVersions: the third version is compatible with the
// second but not with the first, so only the transitive levels reject it.
func TestTransitiveOverThreeVersions(t *testing.T) {
	chains := []struct {
		name       string
		v1, v2, v3 string
		accept     map[Level]bool
	}{
		{
			name: "backward chain: b gains a default then loses it",
			v1:   rec(fA), v2: rec(fA + "," + fBdef), v3: rec(fA + "," + fBnodef),
			accept: map[Level]bool{Backward: true, BackwardTransitive: false, Forward: true, ForwardTransitive: true,
				Full: true, FullTransitive: false, None: true},
		},
		{
			name: "forward chain: b gets a default, then is removed",
			v1:   rec(fA + "," + fBnodef), v2: rec(fA + "," + fBdef), v3: rec(fA),
			accept: map[Level]bool{Backward: true, BackwardTransitive: true, Forward: true, ForwardTransitive: false,
				Full: true, FullTransitive: false, None: true},
		},
	}
	for _, c := range chains {
		for _, level := range Levels {
			t.Run(fmt.Sprintf("%s/%s", c.name, level), func(t *testing.T) {
				existing := []Versioned{{1, MustParse(c.v1)}, {2, MustParse(c.v2)}}
				err := CheckCompatibility(level, MustParse(c.v3), existing)
				if got := err == nil; got != c.accept[level] {
					t.Fatalf("accepted=%v, want %v (err: %v)", got, c.accept[level], err)
				}
			})
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, l := range Levels {
		got, err := ParseLevel(string(l))
		if err != nil || got != l {
			t.Fatalf("%s: %v %v", l, got, err)
		}
	}
	if l, err := ParseLevel("full_transitive"); err != nil || l != FullTransitive {
		t.Fatalf("lower case: %v %v", l, err)
	}
	_, err := ParseLevel("SIDEWAYS")
	var le *LevelError
	if !errors.As(err, &le) || le.Value != "SIDEWAYS" {
		t.Fatalf("want LevelError naming the value, got %v", err)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, text string
		ok         bool
	}{
		{"record", rec(fA), true},
		{"primitive", `"string"`, true},
		{"not json", `{"type":`, false},
		{"unknown type", `{"type":"rec"}`, false},
		{"record without name", `{"type":"record","fields":[]}`, false},
		{"bad default", rec(`{"name":"a","type":"int","default":"x"}`), false},
		{"duplicate field", rec(fA + "," + fA), false},
		{"unknown named ref", rec(`{"name":"a","type":"Nope"}`), false},
		{"empty", ``, false},
		{"trailing data", `"int" "long"`, false},
		{"nested too deep", strings.Repeat("[", MaxNesting+1) + strings.Repeat("]", MaxNesting+1), false},
		{"too many symbols", `{"type":"enum","name":"E","symbols":[` + strings.TrimSuffix(strings.Repeat(`"A",`, MaxArrayLen+1), ",") + `]}`, false},
		{"too large", `"` + strings.Repeat(" ", MaxSchemaSize) + `"`, false},
		{"recursive", `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.text)
			if (err == nil) != tc.ok {
				t.Fatalf("ok=%v, want %v (%v)", err == nil, tc.ok, err)
			}
			var pe *ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %T", err)
			}
			if err == nil {
				again, err := Parse(s.String())
				if err != nil || again.String() != s.String() || again.Canonical() != s.Canonical() {
					t.Fatalf("normalised form does not round-trip: %v\n%s\n%s", err, s.String(), again.String())
				}
			}
		})
	}
}

// Layout differences give one normalised form; defaults do not vanish from it.
func TestNormalisedForm(t *testing.T) {
	a := MustParse(rec(fA + "," + fBdef))
	b := MustParse("{ \"name\" : \"T\", \"namespace\":\"m\",\n \"type\": \"record\", \"fields\": [" + fA + ",\n" + fBdef + "]}")
	c := MustParse(rec(fA + "," + `{"name":"b","type":"string","default":"other"}`))
	if a.String() != b.String() {
		t.Fatalf("layout changed the form:\n%s\n%s", a, b)
	}
	if a.String() == c.String() {
		t.Fatal("different defaults share a form")
	}
	if a.Canonical() != c.Canonical() {
		t.Fatal("canonical form should drop defaults")
	}
}

// Defaults of bytes and fixed survive normalisation and resolve to the bytes
// the Avro specification gives them (code points 0-255).
func TestBytesDefaultsSurviveNormalisation(t *testing.T) {
	w := MustParse(rec(fA))
	r := MustParse(rec(fA + `,{"name":"raw","type":"bytes","default":"\u00ffab"},{"name":"f","type":{"type":"fixed","name":"F2","size":2},"default":"xy"}`))
	again := MustParse(r.String())
	if again.String() != r.String() {
		t.Fatalf("normalised form not stable:\n%s\n%s", r, again)
	}
	res, err := NewResolver(w, again)
	if err != nil {
		t.Fatal(err)
	}
	body, err := w.Encode(map[string]any{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	v, err := res.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if string(m["raw"].([]byte)) != "\xffab" || string(m["f"].([]byte)) != "xy" {
		t.Fatalf("defaults %q %q", m["raw"], m["f"])
	}
}
