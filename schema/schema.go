package schema

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hamba/avro/v2"
)

// MaxSchemaSize bounds the text accepted by Parse, so a hostile request cannot
// make the parser build an arbitrarily large tree.
const MaxSchemaSize = 1 << 20

// MaxArrayLen bounds every JSON array of a schema text (record fields, enum
// symbols, union branches, array defaults), and MaxNodes its JSON values in
// all, and MaxNesting the depth of nested JSON containers: the Avro parser and compatibility checker are quadratic in the number
// of fields of a record, so these limits keep a hostile registration cheap.
const (
	MaxArrayLen = 1000
	MaxNodes    = 100_000
	MaxNesting  = 256
)

// checkShape rejects texts that are not JSON or exceed MaxArrayLen or
// MaxNodes, streaming the tokens without building a tree.
func checkShape(text string) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var arrays []int // element counts of the open containers; -1 for objects
	nodes := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if nodes == 0 {
				return &ParseError{Reason: "empty schema text"}
			}
			return nil
		}
		if err != nil {
			return &ParseError{Reason: "not JSON: " + err.Error(), Err: err}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			arrays = arrays[:len(arrays)-1]
			continue
		}
		if len(arrays) > 0 && arrays[len(arrays)-1] >= 0 {
			arrays[len(arrays)-1]++
			if arrays[len(arrays)-1] > MaxArrayLen {
				return &ParseError{Reason: fmt.Sprintf("a JSON array has more than %d elements", MaxArrayLen)}
			}
		}
		if len(arrays) == 0 && nodes > 0 {
			return &ParseError{Reason: "trailing data after the schema"}
		}
		nodes++
		if nodes > MaxNodes {
			return &ParseError{Reason: fmt.Sprintf("more than %d JSON values", MaxNodes)}
		}
		if d, ok := tok.(json.Delim); ok {
			if len(arrays) >= MaxNesting {
				return &ParseError{Reason: fmt.Sprintf("JSON nested deeper than %d", MaxNesting)}
			}
			if d == '[' {
				arrays = append(arrays, 0)
			} else {
				arrays = append(arrays, -1)
			}
		}
	}
}

// Schema is a parsed Avro schema. It is immutable and safe for concurrent use.
type Schema struct {
	avro      avro.Schema
	text      string // normalised full JSON form: defaults, aliases and docs kept
	canonical string // Avro Parsing Canonical Form

	identOnce sync.Once
	ident     *Resolver
	identErr  error
}

// Parse parses an Avro schema written in JSON. Named types are resolved
// within this text only: nothing is shared between calls.
func Parse(text string) (s *Schema, err error) { return ParseWithReferences(text, nil) }

// ParseWithReferences parses an Avro schema whose text may use the named
// types defined in refs (Confluent's schema references): each reference text
// is parsed first, in order, so a reference may use the ones before it. Only
// text's own normalised and canonical forms are kept; its tree includes the
// referenced types.
func ParseWithReferences(text string, refs []string) (s *Schema, err error) {
	if len(text) > MaxSchemaSize {
		return nil, &ParseError{Reason: fmt.Sprintf("schema is %d bytes, limit is %d", len(text), MaxSchemaSize)}
	}
	// Defence in depth: the Avro parser handles untrusted registry input, and a
	// panic in it must become an error, not a crashed server.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, &ParseError{Reason: fmt.Sprintf("parser failed: %v", r)}
		}
	}()
	if err := checkShape(text); err != nil {
		return nil, err
	}
	cache := &avro.SchemaCache{}
	for i, ref := range refs {
		if err := checkShape(ref); err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("reference %d: %v", i, err), Err: err}
		}
		if _, err := avro.ParseBytesWithCache([]byte(ref), "", cache); err != nil {
			return nil, &ParseError{Reason: fmt.Sprintf("reference %d: %v", i, err), Err: err}
		}
	}
	as, perr := avro.ParseBytesWithCache([]byte(text), "", cache)
	if perr != nil {
		return nil, &ParseError{Reason: perr.Error(), Err: perr}
	}
	full, nerr := normalise(text)
	if nerr != nil {
		return nil, &ParseError{Reason: "cannot normalise: " + nerr.Error(), Err: nerr}
	}
	return &Schema{avro: as, text: full, canonical: as.String()}, nil
}

// Normalise returns the normalised form of a JSON text (compact, object keys
// sorted, numbers and strings kept as written), the form Schema.String
// returns: the registry's identity of an Avro or JSON Schema text.
func Normalise(text string) (string, error) { return normalise(text) }

// normalise re-encodes a JSON text compactly with object keys sorted,
// numbers and strings kept as written. (hamba/avro's own MarshalJSON is not
// used: it writes bytes and fixed defaults as base64 or number arrays, which
// would change their values.)
func normalise(text string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// MustParse is Parse for schemas known to be valid (tests, constants). It
// panics on error.
func MustParse(text string) *Schema {
	s, err := Parse(text)
	if err != nil {
		panic(err)
	}
	return s
}

// String returns the normalised JSON form of the schema: the text as
// written, compact, object keys sorted, nothing dropped. The registry stores and
// compares this form, so two texts differing only in layout get one ID.
func (s *Schema) String() string { return s.text }

// Canonical returns the Avro Parsing Canonical Form (Avro specification,
// "Parsing Canonical Form for Schemas"): names fully qualified, defaults,
// aliases and docs stripped.
func (s *Schema) Canonical() string { return s.canonical }

// Fingerprint returns the SHA-256 fingerprint of the canonical form.
func (s *Schema) Fingerprint() [32]byte { return s.avro.Fingerprint() }

// Avro returns the underlying hamba/avro schema.
func (s *Schema) Avro() avro.Schema { return s.avro }

// Type returns the Avro type of the schema's top level, for example "record".
func (s *Schema) Type() string { return string(deref(s.avro).Type()) }

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}
