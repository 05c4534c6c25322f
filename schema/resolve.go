package schema

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// Resolver decodes msgpack bodies written with a writer schema into values
// shaped by a reader schema, following the Avro specification's resolution
// rules ("Schema Resolution"): reader fields missing from the writer take
// their defaults, writer fields unknown to the reader are skipped, the
// promotions int→long→float→double and string↔bytes apply, and field and
// type aliases match renamed fields and types. A Resolver is safe for
// concurrent use.
//
// Decoded values are nil, bool, int32 (int), int64 (long), float32 (float),
// float64 (double), string (string and enum), []byte (bytes and fixed),
// []any (array), map[string]any (map and record), and the bare value of the
// chosen branch for a union.
type Resolver struct {
	writer, reader *Schema
	root           node
}

// NewResolver prepares the decoding of data written with writer into values
// shaped by reader. An unresolvable pair is a *ResolveError naming the field.
func NewResolver(writer, reader *Schema) (*Resolver, error) {
	c := &compiler{records: map[pair]*recordNode{}}
	root, err := c.compile(writer.avro, reader.avro, "")
	if err != nil {
		return nil, err
	}
	return &Resolver{writer: writer, reader: reader, root: root}, nil
}

// Writer returns the writer schema.
func (r *Resolver) Writer() *Schema { return r.writer }

// Reader returns the reader schema.
func (r *Resolver) Reader() *Schema { return r.reader }

// Decode decodes one msgpack body (without the frame header). The whole body
// must be consumed. Errors are *DecodeError, or *ResolveError when the data
// uses a writer union branch that the reader cannot take.
func (r *Resolver) Decode(body []byte) (any, error) {
	d := dec{n: len(body), body: body}
	d.r.Reset(body)
	d.m = msgpack.GetDecoder()
	d.m.Reset(&d.r)
	defer msgpack.PutDecoder(d.m)
	v, err := r.root.read(&d)
	if err != nil {
		return nil, err
	}
	if d.r.Len() != 0 {
		return nil, d.fail("", fmt.Sprintf("%d trailing bytes after the value", d.r.Len()), nil)
	}
	return v, nil
}

// DecodeInto decodes body and stores the result in out, a pointer to a Go
// value that msgpack can fill (a struct with msgpack tags, a map, ...).
func (r *Resolver) DecodeInto(body []byte, out any) error {
	v, err := r.Decode(body)
	if err != nil {
		return err
	}
	b, err := msgpack.Marshal(v)
	if err != nil {
		return fmt.Errorf("schema: re-encoding decoded value for %T: %w", out, err)
	}
	if err := msgpack.Unmarshal(b, out); err != nil {
		return fmt.Errorf("schema: storing decoded value into %T: %w", out, err)
	}
	return nil
}

// Decode decodes a body written with s itself (no resolution, but full
// validation against s).
func (s *Schema) Decode(body []byte) (any, error) {
	r, err := s.identity()
	if err != nil {
		return nil, err
	}
	return r.Decode(body)
}

func (s *Schema) identity() (*Resolver, error) {
	s.identOnce.Do(func() { s.ident, s.identErr = NewResolver(s, s) })
	return s.ident, s.identErr
}

// node reads one writer-encoded value and returns it shaped by the reader.
type node interface {
	read(d *dec) (any, error)
}

type pair struct{ w, r avro.Schema }

type compiler struct {
	records map[pair]*recordNode
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func typeName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return string(s.Type()) + " " + n.FullName()
	}
	if u, ok := s.(*avro.UnionSchema); ok {
		parts := make([]string, len(u.Types()))
		for i, t := range u.Types() {
			parts[i] = typeName(t)
		}
		return "union [" + strings.Join(parts, ", ") + "]"
	}
	return string(s.Type())
}

func isRecord(t avro.Type) bool { return t == avro.Record || t == avro.Error }

// sameType reports whether w and r are the same type by Avro's first
// matching rule (same primitive, or same named type, by name or alias).
func sameType(w, r avro.Schema) bool {
	w, r = deref(w), deref(r)
	wt, rt := w.Type(), r.Type()
	if isRecord(wt) && isRecord(rt) {
		return namesMatch(w.(avro.NamedSchema), r.(avro.NamedSchema))
	}
	if wt != rt {
		return false
	}
	if wn, ok := w.(avro.NamedSchema); ok {
		return namesMatch(wn, r.(avro.NamedSchema))
	}
	return wt != avro.Array && wt != avro.Map && wt != avro.Union
}

func namesMatch(w, r avro.NamedSchema) bool {
	return w.FullName() == r.FullName() || w.Name() == r.Name() ||
		slices.Contains(r.Aliases(), w.FullName()) || slices.Contains(r.Aliases(), w.Name())
}

func promotable(w, r avro.Type) bool {
	if w == r {
		return true
	}
	switch w {
	case avro.Int:
		return r == avro.Long || r == avro.Float || r == avro.Double
	case avro.Long:
		return r == avro.Float || r == avro.Double
	case avro.Float:
		return r == avro.Double
	case avro.String:
		return r == avro.Bytes
	case avro.Bytes:
		return r == avro.String
	}
	return false
}

func (c *compiler) compile(w, r avro.Schema, path string) (node, error) {
	w, r = deref(w), deref(r)
	if wu, ok := w.(*avro.UnionSchema); ok {
		return c.writerUnion(wu, r, path)
	}
	if ru, ok := r.(*avro.UnionSchema); ok {
		// Avro: the first reader branch that matches the writer type, else the
		// first one the writer type can be promoted or resolved to.
		for _, b := range ru.Types() {
			if sameType(w, b) {
				return c.compile(w, b, path)
			}
		}
		for _, b := range ru.Types() {
			if n, err := c.compile(w, b, path); err == nil {
				return n, nil
			}
		}
		return nil, &ResolveError{Path: path, Reason: fmt.Sprintf("reader %s has no branch for writer type %s", typeName(r), typeName(w))}
	}
	wt, rt := w.Type(), r.Type()
	mismatch := func() error {
		return &ResolveError{Path: path, Reason: fmt.Sprintf("writer type %s cannot be read as %s", typeName(w), typeName(r))}
	}
	switch wt {
	case avro.Null, avro.Boolean, avro.Int, avro.Long, avro.Float, avro.Double, avro.String, avro.Bytes:
		if !promotable(wt, rt) {
			return nil, mismatch()
		}
		return &primNode{path: path, w: wt, r: rt}, nil
	case avro.Record, avro.Error:
		if !isRecord(rt) || !namesMatch(w.(avro.NamedSchema), r.(avro.NamedSchema)) {
			return nil, mismatch()
		}
		return c.record(w.(*avro.RecordSchema), r.(*avro.RecordSchema), path)
	case avro.Enum:
		if rt != avro.Enum || !namesMatch(w.(avro.NamedSchema), r.(avro.NamedSchema)) {
			return nil, mismatch()
		}
		return newEnumNode(w.(*avro.EnumSchema), r.(*avro.EnumSchema), path), nil
	case avro.Fixed:
		if rt != avro.Fixed || !namesMatch(w.(avro.NamedSchema), r.(avro.NamedSchema)) {
			return nil, mismatch()
		}
		wf, rf := w.(*avro.FixedSchema), r.(*avro.FixedSchema)
		if wf.Size() != rf.Size() {
			return nil, &ResolveError{Path: path, Reason: fmt.Sprintf("fixed %s has size %d in the writer and %d in the reader", wf.FullName(), wf.Size(), rf.Size())}
		}
		return &fixedNode{path: path, size: wf.Size()}, nil
	case avro.Array:
		if rt != avro.Array {
			return nil, mismatch()
		}
		items, err := c.compile(w.(*avro.ArraySchema).Items(), r.(*avro.ArraySchema).Items(), path+"[]")
		if err != nil {
			return nil, err
		}
		return &arrayNode{path: path, items: items}, nil
	case avro.Map:
		if rt != avro.Map {
			return nil, mismatch()
		}
		values, err := c.compile(w.(*avro.MapSchema).Values(), r.(*avro.MapSchema).Values(), path+"{}")
		if err != nil {
			return nil, err
		}
		return &mapNode{path: path, values: values}, nil
	}
	return nil, mismatch()
}

func (c *compiler) record(w, r *avro.RecordSchema, path string) (node, error) {
	key := pair{w, r}
	if n, ok := c.records[key]; ok {
		return n, nil // recursive type: the node is being built up the stack
	}
	n := &recordNode{path: path, name: w.FullName(), index: map[string]int{}}
	c.records[key] = n
	fail := func(err error) (node, error) {
		delete(c.records, key)
		return nil, err
	}
	matched := make([]bool, len(r.Fields()))
	byName := make(map[string]int, len(r.Fields()))
	byAlias := map[string]int{}
	for i, rf := range r.Fields() {
		byName[rf.Name()] = i
		for _, a := range rf.Aliases() {
			if _, dup := byAlias[a]; !dup {
				byAlias[a] = i
			}
		}
	}
	for i, wf := range w.Fields() {
		fpath := joinPath(path, wf.Name())
		n.index[wf.Name()] = i
		ri, ok := byName[wf.Name()]
		if !ok {
			if ri, ok = byAlias[wf.Name()]; !ok {
				ri = -1
			}
		}
		if ri < 0 {
			skip, err := c.compile(wf.Type(), wf.Type(), fpath)
			if err != nil {
				return fail(err)
			}
			n.fields = append(n.fields, fieldPlan{wname: wf.Name(), node: skip})
			continue
		}
		if matched[ri] {
			return fail(&ResolveError{Path: fpath, Reason: fmt.Sprintf("reader field %q matches two writer fields", r.Fields()[ri].Name())})
		}
		matched[ri] = true
		rf := r.Fields()[ri]
		fn, err := c.compile(wf.Type(), rf.Type(), fpath)
		if err != nil {
			return fail(err)
		}
		n.fields = append(n.fields, fieldPlan{wname: wf.Name(), rname: rf.Name(), node: fn})
	}
	for i, rf := range r.Fields() {
		if matched[i] {
			continue
		}
		fpath := joinPath(path, rf.Name())
		if !rf.HasDefault() {
			return fail(&ResolveError{Path: fpath, Reason: fmt.Sprintf("reader field %q is missing from writer record %s and has no default", rf.Name(), w.FullName())})
		}
		v, err := defaultValue(rf.Type(), rf.Default(), fpath)
		if err != nil {
			return fail(err)
		}
		n.defaults = append(n.defaults, fieldDefault{name: rf.Name(), value: v})
	}
	return n, nil
}

func (c *compiler) writerUnion(w *avro.UnionSchema, r avro.Schema, path string) (node, error) {
	n := &unionNode{path: path, name: typeName(w)}
	n.bare, n.byKind = unionLayout(w)
	var firstErr error
	resolved := 0
	for _, b := range w.Types() {
		bn, err := c.compile(b, r, path)
		if err != nil {
			// Avro resolves union branches per datum: a branch the reader cannot
			// take is an error only when data actually uses it.
			if firstErr == nil {
				firstErr = err
			}
			bn = errNode{err: err}
		} else {
			resolved++
		}
		n.branches = append(n.branches, bn)
	}
	if resolved == 0 {
		return nil, firstErr
	}
	return n, nil
}

// unionLayout decides how a union is written in msgpack: bare (the branch
// value alone) when every branch has a distinct msgpack kind, otherwise
// tagged as the two-element array [branch index, value]. byKind maps a kind to
// its branch for bare unions.
func unionLayout(u *avro.UnionSchema) (bare bool, byKind [numKinds]int) {
	for i := range byKind {
		byKind[i] = -1
	}
	bare = true
	for i, b := range u.Types() {
		k := schemaKind(b)
		if byKind[k] >= 0 {
			bare = false
		}
		byKind[k] = i
	}
	if !bare {
		return false, byKind
	}
	// Lenient fallbacks for bare unions: integers for a float branch, str for a
	// bytes branch and bin for a string branch, when no exact branch exists.
	fallback := func(from, to kind) {
		if byKind[from] < 0 && byKind[to] >= 0 {
			byKind[from] = byKind[to]
		}
	}
	fallback(kInt, kFloat)
	fallback(kStr, kBin)
	fallback(kBin, kStr)
	return true, byKind
}

func schemaKind(s avro.Schema) kind {
	switch deref(s).Type() {
	case avro.Null:
		return kNil
	case avro.Boolean:
		return kBool
	case avro.Int, avro.Long:
		return kInt
	case avro.Float, avro.Double:
		return kFloat
	case avro.String, avro.Enum:
		return kStr
	case avro.Bytes, avro.Fixed:
		return kBin
	case avro.Array:
		return kArray
	}
	return kMap // record, map
}

// --- nodes

type errNode struct{ err error }

func (n errNode) read(*dec) (any, error) { return nil, n.err }

type primNode struct {
	path string
	w, r avro.Type
}

func (n *primNode) read(d *dec) (any, error) {
	switch n.w {
	case avro.Null:
		return nil, d.readNil(n.path)
	case avro.Boolean:
		return d.readBool(n.path)
	case avro.Int:
		v, err := d.readInt(n.path)
		if err != nil {
			return nil, err
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, d.fail(n.path, fmt.Sprintf("integer %d overflows an int", v), nil)
		}
		return convertInt(v, n.r), nil
	case avro.Long:
		v, err := d.readInt(n.path)
		if err != nil {
			return nil, err
		}
		return convertInt(v, n.r), nil
	case avro.Float:
		v, err := d.readFloat(n.path)
		if err != nil {
			return nil, err
		}
		if n.r == avro.Double {
			return float64(float32(v)), nil
		}
		return float32(v), nil
	case avro.Double:
		return d.readFloat(n.path)
	case avro.String:
		if n.r == avro.Bytes {
			return d.readBytes(n.path)
		}
		return d.readString(n.path)
	case avro.Bytes:
		b, err := d.readBytes(n.path)
		if err != nil {
			return nil, err
		}
		if n.r == avro.String {
			return string(b), nil
		}
		return b, nil
	}
	return nil, d.fail(n.path, "unsupported type "+string(n.w), nil)
}

func convertInt(v int64, to avro.Type) any {
	switch to {
	case avro.Int:
		return int32(v)
	case avro.Float:
		return float32(v)
	case avro.Double:
		return float64(v)
	}
	return v
}

type fixedNode struct {
	path string
	size int
}

func (n *fixedNode) read(d *dec) (any, error) {
	b, err := d.readBytes(n.path)
	if err != nil {
		return nil, err
	}
	if len(b) != n.size {
		return nil, d.fail(n.path, fmt.Sprintf("fixed of %d bytes, want %d", len(b), n.size), nil)
	}
	return b, nil
}

type enumNode struct {
	path    string
	name    string
	mapping map[string]string // writer symbol -> reader symbol ("" = none)
}

func newEnumNode(w, r *avro.EnumSchema, path string) *enumNode {
	n := &enumNode{path: path, name: w.FullName(), mapping: make(map[string]string, len(w.Symbols()))}
	for _, s := range w.Symbols() {
		switch {
		case slices.Contains(r.Symbols(), s):
			n.mapping[s] = s
		case r.HasDefault():
			n.mapping[s] = r.Default()
		default:
			n.mapping[s] = ""
		}
	}
	return n
}

func (n *enumNode) read(d *dec) (any, error) {
	s, err := d.readString(n.path)
	if err != nil {
		return nil, err
	}
	out, ok := n.mapping[s]
	if !ok {
		return nil, d.fail(n.path, fmt.Sprintf("symbol %q is not in writer enum %s", s, n.name), nil)
	}
	if out == "" {
		return nil, d.fail(n.path, fmt.Sprintf("symbol %q of enum %s is unknown to the reader, which has no default", s, n.name), nil)
	}
	return out, nil
}

type arrayNode struct {
	path  string
	items node
}

func (n *arrayNode) read(d *dec) (any, error) {
	l, err := d.readLen(n.path, kArray)
	if err != nil {
		return nil, err
	}
	if err := d.enter(n.path); err != nil {
		return nil, err
	}
	defer d.leave()
	out := make([]any, 0, sizeHint(l))
	for range l {
		v, err := n.items.read(d)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

type mapNode struct {
	path   string
	values node
}

func (n *mapNode) read(d *dec) (any, error) {
	l, err := d.readLen(n.path, kMap)
	if err != nil {
		return nil, err
	}
	if err := d.enter(n.path); err != nil {
		return nil, err
	}
	defer d.leave()
	out := make(map[string]any, sizeHint(l))
	for range l {
		k, err := d.readString(n.path + "{key}")
		if err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, d.fail(n.path, fmt.Sprintf("duplicate map key %q", k), nil)
		}
		v, err := n.values.read(d)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

type fieldPlan struct {
	wname, rname string // rname "" = skipped (unknown to the reader)
	node         node
}

type fieldDefault struct {
	name  string
	value any
}

type recordNode struct {
	path     string
	name     string
	index    map[string]int // writer field name -> position in fields
	fields   []fieldPlan
	defaults []fieldDefault
}

func (n *recordNode) read(d *dec) (any, error) {
	l, err := d.readLen(n.path, kMap)
	if err != nil {
		return nil, err
	}
	if l != len(n.fields) {
		return nil, d.fail(n.path, fmt.Sprintf("record %s has %d fields, body has %d", n.name, len(n.fields), l), nil)
	}
	if err := d.enter(n.path); err != nil {
		return nil, err
	}
	defer d.leave()
	out := make(map[string]any, len(n.fields)+len(n.defaults))
	var small uint64 // seen fields, for records of up to 64 fields
	var seen []bool
	if len(n.fields) > 64 {
		seen = make([]bool, len(n.fields))
	}
	for range l {
		k, err := d.readKey(n.path)
		if err != nil {
			return nil, err
		}
		i, ok := n.index[string(k)]
		if !ok {
			return nil, d.fail(n.path, fmt.Sprintf("field %q is not in writer record %s", k, n.name), nil)
		}
		var dup bool
		if seen != nil {
			dup, seen[i] = seen[i], true
		} else {
			dup = small&(1<<i) != 0
			small |= 1 << i
		}
		if dup {
			return nil, d.fail(joinPath(n.path, string(k)), fmt.Sprintf("field %q appears twice", k), nil)
		}
		f := &n.fields[i]
		v, err := f.node.read(d)
		if err != nil {
			return nil, err
		}
		if f.rname != "" {
			out[f.rname] = v
		}
	}
	for _, f := range n.defaults {
		out[f.name] = cloneValue(f.value)
	}
	return out, nil
}

type unionNode struct {
	path     string
	name     string
	bare     bool
	byKind   [numKinds]int
	branches []node
}

func (n *unionNode) read(d *dec) (any, error) {
	if n.bare {
		k, c, err := d.peek(n.path)
		if err != nil {
			return nil, err
		}
		i := n.byKind[k]
		if i < 0 {
			return nil, d.fail(n.path, fmt.Sprintf("msgpack %s (0x%02x) matches no branch of %s", k, c, n.name), nil)
		}
		return n.branches[i].read(d)
	}
	l, err := d.readLen(n.path, kArray)
	if err != nil {
		return nil, err
	}
	if l != 2 {
		return nil, d.fail(n.path, fmt.Sprintf("tagged union is an array of %d elements, want [branch, value]", l), nil)
	}
	i, err := d.readInt(n.path)
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= int64(len(n.branches)) {
		return nil, d.fail(n.path, fmt.Sprintf("branch %d out of range for %s", i, n.name), nil)
	}
	if err := d.enter(n.path); err != nil {
		return nil, err
	}
	defer d.leave()
	return n.branches[i].read(d)
}

// cloneValue deep-copies a default so that callers may modify decoded values.
func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = cloneValue(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = cloneValue(e)
		}
		return out
	case []byte:
		return bytes.Clone(t)
	}
	return v
}
