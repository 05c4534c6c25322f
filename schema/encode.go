package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
	"github.com/vmihailenco/msgpack/v5"
)

// AppendEncode appends the msgpack encoding of v, written with schema s, to
// dst. v is a generic value (map[string]any for records and maps, []any or any
// slice for arrays, string for enums, []byte for bytes and fixed, any Go
// integer or float for numbers, nil for null, the bare branch value for
// unions) or a Go struct, which is first turned into a generic value through
// its msgpack tags. Record fields missing from v take their defaults; fields
// unknown to s are an error. Errors are *EncodeError.
func (s *Schema) AppendEncode(dst []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	e := encoder{buf: buf, m: msgpack.GetEncoder()}
	e.m.Reset(buf)
	defer msgpack.PutEncoder(e.m)
	if err := e.encode(s.avro, v, "", 0); err != nil {
		return dst, err
	}
	return buf.Bytes(), nil
}

// Encode returns the msgpack encoding of v written with s; see AppendEncode.
func (s *Schema) Encode(v any) ([]byte, error) { return s.AppendEncode(nil, v) }

type encoder struct {
	buf *bytes.Buffer
	m   *msgpack.Encoder
	// defaults relaxes null checks for hamba/avro's parsed default values,
	// which stand for JSON null with a private marker type.
	defaults bool
}

func encErr(path, format string, args ...any) error {
	return &EncodeError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func (e *encoder) isNull(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	if (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.IsNil() {
		return true
	}
	if e.defaults {
		if m, ok := v.(json.Marshaler); ok {
			b, err := m.MarshalJSON()
			return err == nil && string(b) == "null"
		}
	}
	return false
}

// generic turns structs and pointers into values the encoder walks directly.
func generic(v any, path string) (any, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		if rv.IsValid() {
			return rv.Interface(), nil
		}
		return v, nil
	}
	b, err := msgpack.Marshal(rv.Interface())
	if err != nil {
		return nil, encErr(path, "cannot marshal %T with msgpack: %v", v, err)
	}
	var out any
	if err := msgpack.Unmarshal(b, &out); err != nil {
		return nil, encErr(path, "cannot read back %T: %v", v, err)
	}
	return out, nil
}

func (e *encoder) encode(s avro.Schema, v any, path string, depth int) error {
	if depth > 4*MaxDepth {
		return encErr(path, "value nested deeper than %d", 4*MaxDepth)
	}
	s = deref(s)
	switch v.(type) {
	case nil, bool, string, []byte, map[string]any, []any, int, int32, int64, float32, float64:
	default:
		var err error
		if v, err = generic(v, path); err != nil {
			return err
		}
	}
	switch s.Type() {
	case avro.Null:
		if !e.isNull(v) {
			return encErr(path, "want null, got %T", v)
		}
		return e.m.EncodeNil()
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return encErr(path, "want bool, got %T", v)
		}
		return e.m.EncodeBool(b)
	case avro.Int:
		i, ok := toInt64(v)
		if !ok {
			return encErr(path, "want an integer for int, got %T", v)
		}
		if i < math.MinInt32 || i > math.MaxInt32 {
			return encErr(path, "integer %d overflows an int", i)
		}
		return e.m.EncodeInt(i)
	case avro.Long:
		i, ok := toInt64(v)
		if !ok {
			return encErr(path, "want an integer for long, got %T", v)
		}
		return e.m.EncodeInt(i)
	case avro.Float:
		f, ok := toFloat64(v)
		if !ok {
			return encErr(path, "want a number for float, got %T", v)
		}
		return e.m.EncodeFloat32(float32(f))
	case avro.Double:
		f, ok := toFloat64(v)
		if !ok {
			return encErr(path, "want a number for double, got %T", v)
		}
		return e.m.EncodeFloat64(f)
	case avro.String:
		str, ok := v.(string)
		if !ok {
			return encErr(path, "want string, got %T", v)
		}
		if !utf8.ValidString(str) {
			return encErr(path, "string is not valid UTF-8")
		}
		return e.m.EncodeString(str)
	case avro.Bytes:
		b, ok := toBytes(v)
		if !ok {
			return encErr(path, "want []byte, got %T", v)
		}
		return e.m.EncodeBytes(b)
	case avro.Fixed:
		fs := s.(*avro.FixedSchema)
		b, ok := toBytes(v)
		if !ok {
			return encErr(path, "want []byte for fixed %s, got %T", fs.FullName(), v)
		}
		if len(b) != fs.Size() {
			return encErr(path, "fixed %s needs %d bytes, got %d", fs.FullName(), fs.Size(), len(b))
		}
		return e.m.EncodeBytes(b)
	case avro.Enum:
		es := s.(*avro.EnumSchema)
		sym, ok := v.(string)
		if !ok {
			return encErr(path, "want a symbol string for enum %s, got %T", es.FullName(), v)
		}
		if !slices.Contains(es.Symbols(), sym) {
			return encErr(path, "symbol %q is not in enum %s %v", sym, es.FullName(), es.Symbols())
		}
		return e.m.EncodeString(sym)
	case avro.Array:
		return e.array(s.(*avro.ArraySchema), v, path, depth)
	case avro.Map:
		return e.mapValue(s.(*avro.MapSchema), v, path, depth)
	case avro.Record, avro.Error:
		return e.record(s.(*avro.RecordSchema), v, path, depth)
	case avro.Union:
		return e.union(s.(*avro.UnionSchema), v, path, depth)
	}
	return encErr(path, "unsupported schema type %s", s.Type())
}

func (e *encoder) array(s *avro.ArraySchema, v any, path string, depth int) error {
	if l, ok := v.([]any); ok {
		if err := e.m.EncodeArrayLen(len(l)); err != nil {
			return err
		}
		for _, x := range l {
			if err := e.encode(s.Items(), x, path+"[]", depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return encErr(path, "want a slice for array, got %T", v)
	}
	if err := e.m.EncodeArrayLen(rv.Len()); err != nil {
		return err
	}
	for i := range rv.Len() {
		if err := e.encode(s.Items(), rv.Index(i).Interface(), path+"[]", depth+1); err != nil {
			return err
		}
	}
	return nil
}

// stringMap returns the entries of a map with string keys, sorted by key so
// that equal values encode to equal bytes.
func stringMap(v any) ([]string, func(string) any, bool) {
	if m, ok := v.(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return keys, func(k string) any { return m[k] }, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, nil, false
	}
	keys := make([]string, 0, rv.Len())
	for _, k := range rv.MapKeys() {
		keys = append(keys, k.String())
	}
	slices.Sort(keys)
	kt := rv.Type().Key()
	return keys, func(k string) any { return rv.MapIndex(reflect.ValueOf(k).Convert(kt)).Interface() }, true
}

func (e *encoder) mapValue(s *avro.MapSchema, v any, path string, depth int) error {
	keys, get, ok := stringMap(v)
	if !ok {
		return encErr(path, "want a map with string keys, got %T", v)
	}
	if err := e.m.EncodeMapLen(len(keys)); err != nil {
		return err
	}
	for _, k := range keys {
		if err := e.m.EncodeString(k); err != nil {
			return err
		}
		if err := e.encode(s.Values(), get(k), path+"{}", depth+1); err != nil {
			return err
		}
	}
	return nil
}

// fieldSource reads record fields from a map[string]any or, through
// reflection, from any map with string keys.
type fieldSource struct {
	m  map[string]any
	rv reflect.Value
}

func (f fieldSource) len() int {
	if f.m != nil {
		return len(f.m)
	}
	return f.rv.Len()
}

func (f fieldSource) get(k string) (any, bool) {
	if f.m != nil {
		v, ok := f.m[k]
		return v, ok
	}
	v := f.rv.MapIndex(reflect.ValueOf(k).Convert(f.rv.Type().Key()))
	if !v.IsValid() {
		return nil, false
	}
	return v.Interface(), true
}

func (e *encoder) record(s *avro.RecordSchema, v any, path string, depth int) error {
	var src fieldSource
	if m, ok := v.(map[string]any); ok {
		src.m = m
		if m == nil {
			src.m = map[string]any{}
		}
	} else if rv := reflect.ValueOf(v); rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
		src.rv = rv
	} else {
		return encErr(path, "want map[string]any or a struct for record %s, got %T", s.FullName(), v)
	}
	if err := e.m.EncodeMapLen(len(s.Fields())); err != nil {
		return err
	}
	found := 0
	for _, f := range s.Fields() {
		fpath := joinPath(path, f.Name())
		if err := e.m.EncodeString(f.Name()); err != nil {
			return err
		}
		if x, present := src.get(f.Name()); present {
			found++
			if err := e.encode(f.Type(), x, fpath, depth+1); err != nil {
				return err
			}
			continue
		}
		if !f.HasDefault() {
			return encErr(fpath, "field %q of record %s is missing and has no default", f.Name(), s.FullName())
		}
		saved := e.defaults
		e.defaults = true
		err := e.encode(f.Type(), f.Default(), fpath, depth+1)
		e.defaults = saved
		if err != nil {
			return err
		}
	}
	if found != src.len() {
		keys, _, _ := stringMap(v)
		for _, k := range keys {
			if !slices.ContainsFunc(s.Fields(), func(f *avro.Field) bool { return f.Name() == k }) {
				return encErr(joinPath(path, k), "field %q is not in record %s", k, s.FullName())
			}
		}
	}
	return nil
}

func (e *encoder) union(s *avro.UnionSchema, v any, path string, depth int) error {
	bare, _ := unionLayout(s)
	mark := e.buf.Len()
	var firstErr error
	for i, b := range s.Types() {
		if deref(b).Type() == avro.Null && !e.isNull(v) {
			continue
		}
		if !bare {
			if err := e.m.EncodeArrayLen(2); err != nil {
				return err
			}
			if err := e.m.EncodeInt(int64(i)); err != nil {
				return err
			}
		}
		err := e.encode(b, v, path, depth+1)
		if err == nil {
			return nil
		}
		e.buf.Truncate(mark)
		if firstErr == nil {
			firstErr = err
		}
	}
	nonNull := 0
	for _, b := range s.Types() {
		if deref(b).Type() != avro.Null {
			nonNull++
		}
	}
	if nonNull == 1 && firstErr != nil {
		return firstErr
	}
	return encErr(path, "value of Go type %T matches no branch of %s", v, typeName(s))
}

func toInt64(v any) (int64, bool) {
	switch t := v.(type) {
	case int:
		return int64(t), true
	case int8:
		return int64(t), true
	case int16:
		return int64(t), true
	case int32:
		return int64(t), true
	case int64:
		return t, true
	case uint:
		return int64(t), uint64(t) <= math.MaxInt64
	case uint8:
		return int64(t), true
	case uint16:
		return int64(t), true
	case uint32:
		return int64(t), true
	case uint64:
		return int64(t), t <= math.MaxInt64
	}
	return 0, false
}

func toFloat64(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case float32:
		return float64(t), true
	}
	i, ok := toInt64(v)
	return float64(i), ok
}

func toBytes(v any) ([]byte, bool) {
	switch t := v.(type) {
	case []byte:
		return t, true
	case string:
		return []byte(t), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return b, true
	}
	return nil, false
}

// defaultValue converts a default parsed by hamba/avro into the value the
// decoder would produce for it, by encoding it and decoding it back.
func defaultValue(s avro.Schema, def any, path string) (any, error) {
	var buf bytes.Buffer
	e := encoder{buf: &buf, m: msgpack.NewEncoder(&buf), defaults: true}
	if err := e.encode(s, def, path, 0); err != nil {
		return nil, &ResolveError{Path: path, Reason: "invalid default: " + err.Error()}
	}
	c := &compiler{records: map[pair]*recordNode{}}
	n, err := c.compile(s, s, path)
	if err != nil {
		return nil, err
	}
	d := dec{n: buf.Len(), body: buf.Bytes()}
	d.r.Reset(buf.Bytes())
	d.m = msgpack.NewDecoder(&d.r)
	v, err := n.read(&d)
	if err != nil {
		return nil, &ResolveError{Path: path, Reason: "invalid default: " + err.Error()}
	}
	return v, nil
}
