package registry

import (
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/raptormq/raptor/schema"
)

// JSON Schema (https://json-schema.org), parsed and compiled with
// github.com/santhosh-tekuri/jsonschema/v6 (drafts 4 to 2020-12; 2020-12
// when "$schema" is absent). Nothing is loaded from the network or files:
// "$ref"s resolve within the text and to its references, whose names are
// absolute URLs or are relative to jsonBase.

// jsonBase is the URL of the registered text, against which relative
// reference names resolve.
const jsonBase = "mem://registry/"

// maxJSONCompatDepth bounds the comparison of nested JSON schemas.
const maxJSONCompatDepth = 64

type jsonParsed struct{ s *jsonschema.Schema }

func parseJSONSchema(text string, refs []refText) (p parsed, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("JSON Schema compiler failed: %v", r)
		}
	}()
	if len(text) > schema.MaxSchemaSize {
		return nil, fmt.Errorf("schema is %d bytes, limit is %d", len(text), schema.MaxSchemaSize)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // nothing outside the texts given
	for _, r := range refs {
		doc, err := jsonschema.UnmarshalJSON(strings.NewReader(r.text))
		if err != nil {
			return nil, fmt.Errorf("reference %q is not JSON: %w", r.name, err)
		}
		if err := c.AddResource(jsonURL(r.name), doc); err != nil {
			return nil, fmt.Errorf("reference %q: %w", r.name, err)
		}
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if err := c.AddResource(jsonBase+"schema.json", doc); err != nil {
		return nil, err
	}
	s, err := c.Compile(jsonBase + "schema.json")
	if err != nil {
		return nil, err
	}
	return jsonParsed{s}, nil
}

func jsonURL(name string) string {
	if u, err := url.Parse(name); err == nil && u.IsAbs() {
		return name
	}
	return jsonBase + strings.TrimPrefix(name, "/")
}

// canRead reports whether every document valid under w is valid under j,
// checked structurally (docs/SCHEMA.md, "JSON Schema compatibility").
func (j jsonParsed) canRead(w parsed) error {
	c := jsonCompat{seen: map[[2]*jsonschema.Schema]bool{}}
	c.check(j.s, w.(jsonParsed).s, "#", 0)
	if len(c.msgs) > 0 {
		return fmt.Errorf("%s", strings.Join(c.msgs, "; "))
	}
	return nil
}

type jsonCompat struct {
	seen map[[2]*jsonschema.Schema]bool
	msgs []string
}

func (c *jsonCompat) fail(path, format string, args ...any) {
	c.msgs = append(c.msgs, path+": "+fmt.Sprintf(format, args...))
}

func follow(s *jsonschema.Schema) *jsonschema.Schema {
	for i := 0; s != nil && s.Ref != nil && i < 32; i++ {
		s = s.Ref
	}
	return s
}

// isAny reports whether s accepts every JSON value, as far as the checked
// keywords tell.
func isAny(s *jsonschema.Schema) bool {
	s = follow(s)
	if s == nil || s.Bool != nil && *s.Bool {
		return true
	}
	return s.Bool == nil && s.Types == nil && s.Enum == nil && s.Const == nil && len(s.Properties) == 0 &&
		len(s.Required) == 0 && s.AdditionalProperties == nil && s.Items == nil && s.Items2020 == nil &&
		len(s.PrefixItems) == 0 && len(s.AllOf) == 0 && len(s.AnyOf) == 0 && len(s.OneOf) == 0 && s.Not == nil &&
		s.Pattern == nil && s.Maximum == nil && s.Minimum == nil && s.ExclusiveMaximum == nil &&
		s.ExclusiveMinimum == nil && s.MultipleOf == nil && s.MinLength == nil && s.MaxLength == nil &&
		s.MinItems == nil && s.MaxItems == nil && s.MinProperties == nil && s.MaxProperties == nil && !s.UniqueItems
}

func isFalse(s *jsonschema.Schema) bool {
	s = follow(s)
	return s != nil && s.Bool != nil && !*s.Bool
}

// check records why some document valid under w may be invalid under r.
func (c *jsonCompat) check(r, w *jsonschema.Schema, path string, depth int) {
	r, w = follow(r), follow(w)
	if isAny(r) || isFalse(w) {
		return
	}
	if depth > maxJSONCompatDepth {
		c.fail(path, "schemas nested deeper than %d", maxJSONCompatDepth)
		return
	}
	if c.seen[[2]*jsonschema.Schema{r, w}] {
		return // a recursive pair already under check
	}
	c.seen[[2]*jsonschema.Schema{r, w}] = true
	if isFalse(r) {
		c.fail(path, "the reader accepts nothing")
		return
	}
	// Combinators. Writer anyOf/oneOf: each branch must be readable; writer
	// allOf: one readable branch suffices; reader allOf: every branch must
	// read; reader anyOf/oneOf: some branch must read.
	if wb := append(slices.Clone(w.AnyOf), w.OneOf...); len(wb) > 0 {
		for i, b := range wb {
			c.check(r, b, fmt.Sprintf("%s/anyOf/%d", path, i), depth+1)
		}
		return
	}
	if len(w.AllOf) > 0 {
		for _, b := range w.AllOf {
			sub := jsonCompat{seen: c.seen}
			if sub.check(r, b, path, depth+1); len(sub.msgs) == 0 {
				return
			}
		}
	}
	for i, b := range r.AllOf {
		c.check(b, w, fmt.Sprintf("%s/allOf/%d", path, i), depth+1)
	}
	if rb := append(slices.Clone(r.AnyOf), r.OneOf...); len(rb) > 0 {
		ok := false
		for _, b := range rb {
			sub := jsonCompat{seen: c.seen}
			if sub.check(b, w, path, depth+1); len(sub.msgs) == 0 {
				ok = true
				break
			}
		}
		if !ok {
			c.fail(path, "no branch of the reader's anyOf/oneOf reads the writer's schema")
		}
	}
	// Reader "not": what it excludes, the writer must exclude too.
	if r.Not != nil {
		if w.Not == nil {
			c.fail(path, "the reader adds a \"not\" constraint")
		} else {
			c.check(w.Not, r.Not, path+"/not", depth+1)
		}
	}

	// Types: integer is a number.
	if r.Types != nil {
		rt := r.Types.ToStrings()
		if w.Types == nil {
			c.fail(path, "the reader restricts the type to %v, the writer does not", rt)
		} else {
			for _, t := range w.Types.ToStrings() {
				if !slices.Contains(rt, t) && !(t == "integer" && slices.Contains(rt, "number")) {
					c.fail(path, "type %s of the writer is not accepted by the reader (%v)", t, rt)
				}
			}
		}
	}
	// Values.
	rvals, wvals := enumValues(r), enumValues(w)
	if rvals != nil {
		if wvals == nil {
			c.fail(path, "the reader restricts values to an enum, the writer does not")
		}
		for _, v := range wvals {
			if !slices.ContainsFunc(rvals, func(x any) bool { return reflect.DeepEqual(x, v) }) {
				c.fail(path, "enum value %v of the writer is not accepted by the reader", v)
			}
		}
	}
	c.bounds(path, r, w)
	if r.Pattern != nil && (w.Pattern == nil || w.Pattern.String() != r.Pattern.String()) {
		c.fail(path, "the reader adds or changes the pattern %q", r.Pattern.String())
	}

	// Objects.
	for _, name := range slices.Sorted(maps.Keys(r.Properties)) {
		rp := r.Properties[name]
		p := path + "/properties/" + name
		if wp, ok := w.Properties[name]; ok {
			c.check(rp, wp, p, depth+1)
			continue
		}
		switch ap := w.AdditionalProperties.(type) {
		case bool:
			if !ap {
				continue // closed writer: it never writes name
			}
		case *jsonschema.Schema:
			c.check(rp, ap, p, depth+1)
			continue
		}
		if !isAny(rp) {
			c.fail(p, "property %q added to an open content model (the writer may hold any value under it)", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(w.Properties)) {
		if _, ok := r.Properties[name]; ok {
			continue
		}
		p := path + "/properties/" + name
		switch ap := r.AdditionalProperties.(type) {
		case bool:
			if !ap {
				c.fail(p, "property %q removed from a closed content model", name)
			}
		case *jsonschema.Schema:
			c.check(ap, w.Properties[name], p, depth+1)
		}
	}
	for _, name := range r.Required {
		if !slices.Contains(w.Required, name) {
			c.fail(path+"/required", "property %q is required by the reader, not by the writer", name)
		}
	}
	switch rap := r.AdditionalProperties.(type) {
	case bool:
		if !rap && !isClosed(w) {
			c.fail(path, "the reader closes the content model (additionalProperties false), the writer does not")
		}
	case *jsonschema.Schema:
		switch wap := w.AdditionalProperties.(type) {
		case *jsonschema.Schema:
			c.check(rap, wap, path+"/additionalProperties", depth+1)
		case nil:
			if !isAny(rap) {
				c.fail(path, "the reader restricts additional properties, the writer does not")
			}
		case bool:
			if wap && !isAny(rap) {
				c.fail(path, "the reader restricts additional properties, the writer does not")
			}
		}
	}

	// Arrays.
	ri, wi := itemsOf(r), itemsOf(w)
	if ri != nil {
		if wi == nil {
			if !isAny(ri) {
				c.fail(path+"/items", "the reader restricts array items, the writer does not")
			}
		} else {
			c.check(ri, wi, path+"/items", depth+1)
		}
	}
	if r.UniqueItems && !w.UniqueItems {
		c.fail(path, "the reader requires unique items, the writer does not")
	}
}

func isClosed(s *jsonschema.Schema) bool {
	b, ok := s.AdditionalProperties.(bool)
	return ok && !b
}

func itemsOf(s *jsonschema.Schema) *jsonschema.Schema {
	if s.Items2020 != nil {
		return s.Items2020
	}
	if it, ok := s.Items.(*jsonschema.Schema); ok {
		return it
	}
	return nil
}

func enumValues(s *jsonschema.Schema) []any {
	if s.Const != nil {
		return []any{*s.Const}
	}
	if s.Enum != nil {
		return s.Enum.Values
	}
	return nil
}

// bounds checks that every bound of r is at most as tight as w's.
func (c *jsonCompat) bounds(path string, r, w *jsonschema.Schema) {
	ints := []struct {
		name     string
		rv, wv   *int
		isMaxish bool
	}{
		{"maxLength", r.MaxLength, w.MaxLength, true}, {"minLength", r.MinLength, w.MinLength, false},
		{"maxItems", r.MaxItems, w.MaxItems, true}, {"minItems", r.MinItems, w.MinItems, false},
		{"maxProperties", r.MaxProperties, w.MaxProperties, true}, {"minProperties", r.MinProperties, w.MinProperties, false},
	}
	for _, b := range ints {
		if b.rv == nil {
			continue
		}
		if b.wv == nil || b.isMaxish && *b.wv > *b.rv || !b.isMaxish && *b.wv < *b.rv {
			c.fail(path, "the reader's %s %d is tighter than the writer's (%s)", b.name, *b.rv, intOrNone(b.wv))
		}
	}
	rats := []struct {
		name     string
		rv, wv   *big.Rat
		isMaxish bool
	}{
		{"maximum", r.Maximum, w.Maximum, true}, {"minimum", r.Minimum, w.Minimum, false},
		{"exclusiveMaximum", r.ExclusiveMaximum, w.ExclusiveMaximum, true}, {"exclusiveMinimum", r.ExclusiveMinimum, w.ExclusiveMinimum, false},
	}
	for _, b := range rats {
		if b.rv == nil {
			continue
		}
		if b.wv == nil || b.isMaxish && b.wv.Cmp(b.rv) > 0 || !b.isMaxish && b.wv.Cmp(b.rv) < 0 {
			c.fail(path, "the reader's %s %s is tighter than the writer's", b.name, b.rv.RatString())
		}
	}
	if r.MultipleOf != nil {
		if w.MultipleOf == nil || !new(big.Rat).Quo(w.MultipleOf, r.MultipleOf).IsInt() {
			c.fail(path, "the reader's multipleOf %s is not implied by the writer's", r.MultipleOf.RatString())
		}
	}
}

func intOrNone(p *int) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}
