package registry

import (
	"strconv"
	"strings"

	"github.com/raptormq/raptor/schema"
)

// The schema types a registry serves, as named by Confluent's API.
const (
	TypeAvro     = "AVRO"
	TypeJSON     = "JSON"
	TypeProtobuf = "PROTOBUF"
)

// parsed is a schema of one type, parsed with its references. canRead
// reports whether data written with writer (of the same type) can be read
// with this schema, and why not.
type parsed interface {
	canRead(writer parsed) error
}

// refText is one resolved reference: the name the referring text uses and
// the referenced text.
type refText struct {
	name, text string
}

// schemaType is what the registry needs of one schema type.
type schemaType struct {
	// parse parses text with its resolved references, deepest first.
	parse func(text string, refs []refText) (parsed, error)
	// identity returns the form two texts share exactly when the registry
	// takes them for one schema (layout and key order do not count).
	identity func(text string) (string, error)
	// normalize returns the form stored with ?normalize=true.
	normalize func(text string) (string, error)
}

// schemaTypes lists the served types; SchemaTypes returns their names.
var schemaTypes = map[string]schemaType{
	TypeAvro:     {parse: parseAvro, identity: schema.Normalise, normalize: schema.Normalise},
	TypeJSON:     {parse: parseJSONSchema, identity: schema.Normalise, normalize: schema.Normalise},
	TypeProtobuf: {parse: parseProtobuf, identity: protoIdentity, normalize: trimmed},
}

// SchemaTypes returns the names of the served schema types, sorted.
func SchemaTypes() []string {
	out := make([]string, 0, len(schemaTypes))
	for _, t := range []string{TypeAvro, TypeJSON, TypeProtobuf} {
		if _, ok := schemaTypes[t]; ok {
			out = append(out, t)
		}
	}
	return out
}

// typeOf returns the canonical name of a schema type ("" is AVRO).
func typeOf(name string) (string, schemaType, error) {
	if name == "" {
		name = TypeAvro
	}
	t, ok := schemaTypes[strings.ToUpper(name)]
	if !ok {
		return "", schemaType{}, &Error{Code: CodeInvalidSchema, Message: "Invalid schema: unsupported schema type " + strconv.Quote(name) + " (this registry serves " + strings.Join(SchemaTypes(), ", ") + ")"}
	}
	return strings.ToUpper(name), t, nil
}

type avroParsed struct{ s *schema.Schema }

func parseAvro(text string, refs []refText) (parsed, error) {
	texts := make([]string, len(refs))
	for i, r := range refs {
		texts[i] = r.text
	}
	s, err := schema.ParseWithReferences(text, texts)
	if err != nil {
		return nil, err
	}
	return avroParsed{s}, nil
}

func (a avroParsed) canRead(w parsed) error { return schema.Compatible(a.s, w.(avroParsed).s) }
