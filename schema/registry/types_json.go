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

// maxJSONCompatDepth bounds the nesting of the JSON schemas compared, and
// maxJSONCompatSteps the work of one comparison (each writer anyOf/oneOf
// multiplies it by its branches): past them a pair is reported as not
// checkable, hence incompatible.
const (
	maxJSONCompatDepth = 128
	maxJSONCompatSteps = 100_000
)

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
	c := jsonCompat{active: map[string]bool{}}
	c.check(j.s, wconj{}.add(w.(jsonParsed).s, 0), "#", 0)
	if len(c.msgs) > 0 {
		return fmt.Errorf("%s", strings.Join(c.msgs, "; "))
	}
	return nil
}

// wconj is what is known of the documents a writer produces: they satisfy
// every schema of all (its "$ref" targets and "allOf" branches included),
// and for each schema of expanded, the branch of its anyOf/oneOf that was
// added to all.
type wconj struct {
	all      []*jsonschema.Schema
	expanded []*jsonschema.Schema
}

func (w wconj) add(s *jsonschema.Schema, depth int) wconj {
	if s == nil || depth > 32 || slices.Contains(w.all, s) {
		return w
	}
	w.all = append(slices.Clip(w.all), s)
	w = w.add(s.Ref, depth+1)
	for _, b := range s.AllOf {
		w = w.add(b, depth+1)
	}
	return w
}

func conjOf(ss ...*jsonschema.Schema) wconj {
	var w wconj
	for _, s := range ss {
		w = w.add(s, 0)
	}
	return w
}

func (w wconj) key() string {
	var b strings.Builder
	for _, s := range w.all {
		fmt.Fprintf(&b, "%p,", s)
	}
	b.WriteByte('|')
	for _, s := range w.expanded {
		fmt.Fprintf(&b, "%p,", s)
	}
	return b.String()
}

type jsonCompat struct {
	active map[string]bool // pairs under check: a recursive pair met again holds
	steps  int
	msgs   []string
}

func (c *jsonCompat) fail(path, format string, args ...any) {
	c.msgs = append(c.msgs, path+": "+fmt.Sprintf(format, args...))
}

// trial runs f on a scratch collector sharing the budget and reports
// whether it found nothing.
func (c *jsonCompat) trial(f func(*jsonCompat)) bool {
	sub := jsonCompat{active: c.active, steps: c.steps}
	f(&sub)
	c.steps = sub.steps
	return len(sub.msgs) == 0
}

// isAny reports whether s accepts every JSON value, as far as the checked
// keywords tell.
func isAny(s *jsonschema.Schema) bool {
	if s == nil || s.Bool != nil && *s.Bool {
		return true
	}
	return s.Bool == nil && s.Ref == nil && s.Types == nil && s.Enum == nil && s.Const == nil && len(s.Properties) == 0 &&
		len(s.Required) == 0 && s.AdditionalProperties == nil && s.Items == nil && s.Items2020 == nil &&
		len(s.AllOf) == 0 && len(s.AnyOf) == 0 && len(s.OneOf) == 0 && s.Not == nil &&
		s.Pattern == nil && s.Maximum == nil && s.Minimum == nil && s.ExclusiveMaximum == nil &&
		s.ExclusiveMinimum == nil && s.MultipleOf == nil && s.MinLength == nil && s.MaxLength == nil &&
		s.MinItems == nil && s.MaxItems == nil && s.MinProperties == nil && s.MaxProperties == nil && !s.UniqueItems
}

func isFalse(s *jsonschema.Schema) bool { return s != nil && s.Bool != nil && !*s.Bool }

// JSON types as bits; "number" is integer and non-integer.
const (
	tNull uint8 = 1 << iota
	tBool
	tInt
	tFrac
	tString
	tArray
	tObject
	tAll = tNull | tBool | tInt | tFrac | tString | tArray | tObject
)

var typeBits = map[string]uint8{"null": tNull, "boolean": tBool, "integer": tInt, "number": tInt | tFrac,
	"string": tString, "array": tArray, "object": tObject}

func typesOf(s *jsonschema.Schema) uint8 {
	if s.Types == nil {
		return tAll
	}
	var t uint8
	for _, n := range s.Types.ToStrings() {
		t |= typeBits[n]
	}
	return t
}

func typeNames(t uint8) []string {
	var out []string
	for _, n := range []string{"null", "boolean", "integer", "number", "string", "array", "object"} {
		if b := typeBits[n]; t&b == b || n == "number" && t&tFrac != 0 {
			if n == "integer" && t&tFrac != 0 {
				continue // named by number
			}
			out = append(out, n)
		}
	}
	return out
}

// check records why some document the writer w produces may be invalid
// under r.
func (c *jsonCompat) check(r *jsonschema.Schema, w wconj, path string, depth int) {
	if isAny(r) || slices.ContainsFunc(w.all, isFalse) {
		return
	}
	if c.steps++; c.steps > maxJSONCompatSteps {
		c.fail(path, "comparison needs more than %d steps", maxJSONCompatSteps)
		return
	}
	if depth > maxJSONCompatDepth {
		c.fail(path, "schemas nested deeper than %d", maxJSONCompatDepth)
		return
	}
	key := fmt.Sprintf("%p|", r) + w.key()
	if c.active[key] {
		return
	}
	c.active[key] = true
	defer delete(c.active, key)
	if isFalse(r) {
		c.fail(path, "the reader accepts nothing")
		return
	}
	// A writer anyOf/oneOf: the document satisfies one branch, so each
	// branch (with the rest of what is known) must be readable.
	for _, s := range w.all {
		if bs := append(slices.Clone(s.AnyOf), s.OneOf...); len(bs) > 0 && !slices.Contains(w.expanded, s) {
			for i, b := range bs {
				sub := w.add(b, 0)
				sub.expanded = append(slices.Clip(w.expanded), s)
				c.check(r, sub, fmt.Sprintf("%s(writer branch %d)", path, i), depth+1)
			}
			return
		}
	}
	// The reader's own conjunction: its "$ref" target and allOf branches all
	// hold; of its anyOf/oneOf, one branch must.
	if r.Ref != nil {
		c.check(r.Ref, w, path, depth+1)
	}
	for i, b := range r.AllOf {
		c.check(b, w, fmt.Sprintf("%s/allOf/%d", path, i), depth+1)
	}
	if rb := append(slices.Clone(r.AnyOf), r.OneOf...); len(rb) > 0 {
		if !slices.ContainsFunc(rb, func(b *jsonschema.Schema) bool {
			return c.trial(func(sub *jsonCompat) { sub.check(b, w, path, depth+1) })
		}) {
			c.fail(path, "no branch of the reader's anyOf/oneOf reads the writer's schema")
		}
	}
	if r.Not != nil && !slices.ContainsFunc(w.all, func(s *jsonschema.Schema) bool {
		// What the reader excludes, the writer must exclude too.
		return s.Not != nil && c.trial(func(sub *jsonCompat) { sub.check(s.Not, conjOf(r.Not), path+"/not", depth+1) })
	}) {
		c.fail(path, "the reader adds a \"not\" constraint the writer does not have")
	}

	wt := tAll
	for _, s := range w.all {
		wt &= typesOf(s)
	}
	if rt := typesOf(r); wt&^rt != 0 {
		c.fail(path, "the writer's types %v are not all accepted by the reader (%v)", typeNames(wt), typeNames(rt))
	}
	if rvals := enumValues(r); rvals != nil && !slices.ContainsFunc(w.all, func(s *jsonschema.Schema) bool {
		wvals := enumValues(s)
		return wvals != nil && !slices.ContainsFunc(wvals, func(v any) bool {
			return !slices.ContainsFunc(rvals, func(x any) bool { return reflect.DeepEqual(x, v) })
		})
	}) {
		c.fail(path, "the reader restricts values to %v, the writer may write others", rvals)
	}
	c.bounds(path, r, w.all, wt)
	if wt&tObject != 0 {
		c.objects(r, w, path, depth)
	}
	if wt&tArray != 0 {
		if ri := itemsOf(r); ri != nil {
			var wi wconj
			for _, s := range w.all {
				wi = wi.add(itemsOf(s), 0)
			}
			if len(wi.all) == 0 {
				c.fail(path+"/items", "the reader restricts array items, the writer does not")
			} else {
				c.check(ri, wi, path+"/items", depth+1)
			}
		}
		if r.UniqueItems && !slices.ContainsFunc(w.all, func(s *jsonschema.Schema) bool { return s.UniqueItems }) {
			c.fail(path, "the reader requires unique items, the writer does not")
		}
	}
}

// writerProp returns what the writer writes under property name: never
// (some schema closes its content model without name, or forbids it), or
// the schemas its value satisfies (none known: any value).
func writerProp(w wconj, name string) (never bool, vals wconj) {
	for _, s := range w.all {
		if p, ok := s.Properties[name]; ok {
			if isFalse(p) {
				return true, wconj{}
			}
			vals = vals.add(p, 0)
			continue
		}
		if len(s.PatternProperties) > 0 {
			continue // not compared: the name may match a pattern
		}
		switch ap := s.AdditionalProperties.(type) {
		case bool:
			if !ap {
				return true, wconj{}
			}
		case *jsonschema.Schema:
			if isFalse(ap) {
				return true, wconj{}
			}
			vals = vals.add(ap, 0)
		}
	}
	return false, vals
}

// closedWriter reports whether some writer schema allows only its declared
// properties.
func closedWriter(w wconj) bool {
	return slices.ContainsFunc(w.all, func(s *jsonschema.Schema) bool {
		if len(s.PatternProperties) > 0 {
			return false
		}
		b, ok := s.AdditionalProperties.(bool)
		if ok && !b {
			return true
		}
		ap, ok := s.AdditionalProperties.(*jsonschema.Schema)
		return ok && isFalse(ap)
	})
}

func (c *jsonCompat) objects(r *jsonschema.Schema, w wconj, path string, depth int) {
	for _, name := range slices.Sorted(maps.Keys(r.Properties)) {
		p := path + "/properties/" + name
		never, vals := writerProp(w, name)
		switch {
		case never:
		case len(vals.all) == 0:
			if !isAny(r.Properties[name]) {
				c.fail(p, "property %q added to an open content model (the writer may hold any value under it)", name)
			}
		default:
			c.check(r.Properties[name], vals, p, depth+1)
		}
	}
	written := map[string]bool{}
	for _, s := range w.all {
		for name := range s.Properties {
			written[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(written)) {
		if _, ok := r.Properties[name]; ok || len(r.PatternProperties) > 0 {
			continue
		}
		never, vals := writerProp(w, name)
		if never {
			continue
		}
		p := path + "/properties/" + name
		switch ap := r.AdditionalProperties.(type) {
		case bool:
			if !ap {
				c.fail(p, "property %q removed from a closed content model", name)
			}
		case *jsonschema.Schema:
			c.check(ap, vals, p, depth+1)
		}
	}
	for _, name := range r.Required {
		if !slices.ContainsFunc(w.all, func(s *jsonschema.Schema) bool { return slices.Contains(s.Required, name) }) {
			c.fail(path+"/required", "property %q is required by the reader, not by the writer", name)
		}
	}
	if len(r.PatternProperties) > 0 || closedWriter(w) {
		return // other names: not compared / never written
	}
	switch rap := r.AdditionalProperties.(type) {
	case bool:
		if !rap {
			c.fail(path, "the reader closes the content model (additionalProperties false), the writer does not")
		}
	case *jsonschema.Schema:
		var wa wconj
		for _, s := range w.all {
			if ap, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
				wa = wa.add(ap, 0)
			}
		}
		if len(wa.all) == 0 {
			if !isAny(rap) {
				c.fail(path, "the reader restricts additional properties, the writer does not")
			}
		} else {
			c.check(rap, wa, path+"/additionalProperties", depth+1)
		}
	}
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

// bounds checks that every bound of r is implied by one of the writer's, for
// the types the writer may write.
func (c *jsonCompat) bounds(path string, r *jsonschema.Schema, ws []*jsonschema.Schema, wt uint8) {
	ints := []struct {
		name  string
		types uint8
		max   bool
		get   func(*jsonschema.Schema) *int
	}{
		{"maxLength", tString, true, func(s *jsonschema.Schema) *int { return s.MaxLength }},
		{"minLength", tString, false, func(s *jsonschema.Schema) *int { return s.MinLength }},
		{"maxItems", tArray, true, func(s *jsonschema.Schema) *int { return s.MaxItems }},
		{"minItems", tArray, false, func(s *jsonschema.Schema) *int { return s.MinItems }},
		{"maxProperties", tObject, true, func(s *jsonschema.Schema) *int { return s.MaxProperties }},
		{"minProperties", tObject, false, func(s *jsonschema.Schema) *int { return s.MinProperties }},
	}
	for _, b := range ints {
		rv := b.get(r)
		if rv == nil || wt&b.types == 0 {
			continue
		}
		if !slices.ContainsFunc(ws, func(s *jsonschema.Schema) bool {
			wv := b.get(s)
			return wv != nil && (b.max && *wv <= *rv || !b.max && *wv >= *rv)
		}) {
			c.fail(path, "the reader's %s %d is not implied by the writer's", b.name, *rv)
		}
	}
	rats := []struct {
		name string
		max  bool
		get  func(*jsonschema.Schema) *big.Rat
	}{
		{"maximum", true, func(s *jsonschema.Schema) *big.Rat { return s.Maximum }},
		{"minimum", false, func(s *jsonschema.Schema) *big.Rat { return s.Minimum }},
		{"exclusiveMaximum", true, func(s *jsonschema.Schema) *big.Rat { return s.ExclusiveMaximum }},
		{"exclusiveMinimum", false, func(s *jsonschema.Schema) *big.Rat { return s.ExclusiveMinimum }},
	}
	if wt&(tInt|tFrac) != 0 {
		for _, b := range rats {
			rv := b.get(r)
			if rv == nil {
				continue
			}
			if !slices.ContainsFunc(ws, func(s *jsonschema.Schema) bool {
				wv := b.get(s)
				return wv != nil && (b.max && wv.Cmp(rv) <= 0 || !b.max && wv.Cmp(rv) >= 0)
			}) {
				c.fail(path, "the reader's %s %s is not implied by the writer's", b.name, rv.RatString())
			}
		}
		if r.MultipleOf != nil && !slices.ContainsFunc(ws, func(s *jsonschema.Schema) bool {
			return s.MultipleOf != nil && new(big.Rat).Quo(s.MultipleOf, r.MultipleOf).IsInt()
		}) {
			c.fail(path, "the reader's multipleOf %s is not implied by the writer's", r.MultipleOf.RatString())
		}
	}
	if r.Pattern != nil && wt&tString != 0 && !slices.ContainsFunc(ws, func(s *jsonschema.Schema) bool {
		return s.Pattern != nil && s.Pattern.String() == r.Pattern.String()
	}) {
		c.fail(path, "the reader's pattern %q is not the writer's", r.Pattern.String())
	}
}
