package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/parser"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/raptormq/raptor/schema"
)

// Protobuf schemas (.proto source, proto2, proto3 or editions), parsed,
// linked and checked with github.com/bufbuild/protocompile. Imports resolve
// to the schema's references (by import path: the reference name) and to
// the well-known types (google/protobuf/*.proto); nothing else is read.

// protoMain is the file name of the registered text while compiling.
const protoMain = "registry-schema.proto"

type protoParsed struct{ fd protoreflect.FileDescriptor }

func parseProtobuf(text string, refs []refText) (p parsed, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("protobuf compiler failed: %v", r)
		}
	}()
	if len(text) > schema.MaxSchemaSize {
		return nil, fmt.Errorf("schema is %d bytes, limit is %d", len(text), schema.MaxSchemaSize)
	}
	srcs := map[string]string{protoMain: text}
	for _, r := range refs {
		if r.name == protoMain {
			return nil, fmt.Errorf("reference name %q is reserved", r.name)
		}
		srcs[r.name] = r.text
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{Accessor: protocompile.SourceAccessorFromMap(srcs)}),
	}
	files, err := c.Compile(context.Background(), protoMain)
	if err != nil {
		return nil, err
	}
	return protoParsed{files[0]}, nil
}

// protoIdentity is a layout-free form of a .proto text: its descriptor as
// parsed (before imports are resolved), without source positions, in
// deterministic protobuf encoding. Comments, whitespace and option layout do
// not count; declaration order does.
func protoIdentity(text string) (id string, err error) {
	defer func() {
		if r := recover(); r != nil {
			id, err = "", fmt.Errorf("protobuf parser failed: %v", r)
		}
	}()
	h := reporter.NewHandler(nil)
	ast, err := parser.Parse(protoMain, strings.NewReader(text), h)
	if err != nil {
		return "", err
	}
	res, err := parser.ResultFromAST(ast, false, h)
	if err != nil {
		return "", err
	}
	fdp := proto.Clone(res.FileDescriptorProto())
	fdp.ProtoReflect().Clear(fdp.ProtoReflect().Descriptor().Fields().ByName("source_code_info"))
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(fdp)
	if err != nil {
		return "", err
	}
	return "protobuf:" + hex.EncodeToString(b), nil
}

func trimmed(text string) (string, error) { return strings.TrimSpace(text), nil }

// canRead reports whether data written with w decodes with p: Confluent's
// rules for protobuf (docs/SCHEMA.md, "Protobuf compatibility"), comparing
// w (the original) with p (the update).
func (p protoParsed) canRead(w parsed) error {
	wf := w.(protoParsed).fd
	var msgs []string
	if wf.Package() != p.fd.Package() {
		msgs = append(msgs, fmt.Sprintf("package changed from %q to %q", wf.Package(), p.fd.Package()))
	}
	var walk func(ms protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			wm := ms.Get(i)
			walk(wm.Messages())
			if wm.IsMapEntry() {
				continue
			}
			rm := findMessage(p.fd, wm.FullName())
			if rm == nil {
				msgs = append(msgs, fmt.Sprintf("message %s removed", wm.FullName()))
				continue
			}
			msgs = append(msgs, compareMessages(wm, rm)...)
		}
	}
	walk(wf.Messages())
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "; "))
	}
	return nil
}

func findMessage(fd protoreflect.FileDescriptor, name protoreflect.FullName) protoreflect.MessageDescriptor {
	var find func(ms protoreflect.MessageDescriptors) protoreflect.MessageDescriptor
	find = func(ms protoreflect.MessageDescriptors) protoreflect.MessageDescriptor {
		for i := range ms.Len() {
			m := ms.Get(i)
			if m.FullName() == name {
				return m
			}
			if f := find(m.Messages()); f != nil {
				return f
			}
		}
		return nil
	}
	return find(fd.Messages())
}

// wireGroup names the scalar kinds that share a wire encoding, so a field
// may change between them (int32 <-> int64 and so on).
func wireGroup(k protoreflect.Kind) string {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Uint32Kind, protoreflect.Int64Kind, protoreflect.Uint64Kind, protoreflect.BoolKind:
		return "varint"
	case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		return "zigzag"
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind:
		return "fixed32"
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind:
		return "fixed64"
	case protoreflect.StringKind, protoreflect.BytesKind:
		return "length-delimited"
	}
	return string(k.String())
}

func compareMessages(w, r protoreflect.MessageDescriptor) []string {
	var msgs []string
	fail := func(format string, args ...any) {
		msgs = append(msgs, fmt.Sprintf("message %s: ", w.FullName())+fmt.Sprintf(format, args...))
	}
	movedTo := map[protoreflect.FullName]int{} // reader oneof -> writer fields moved into it
	for i := range w.Fields().Len() {
		wf := w.Fields().Get(i)
		rf := r.Fields().ByNumber(wf.Number())
		if rf == nil {
			if wf.Cardinality() == protoreflect.Required {
				fail("required field %d (%s) removed", wf.Number(), wf.Name())
			}
			continue // a removed field is kept as unknown: compatible
		}
		wk, rk := wf.Kind(), rf.Kind()
		switch {
		case wf.IsMap() != rf.IsMap():
			fail("field %d (%s) changed between map and non-map", wf.Number(), wf.Name())
		case wf.IsMap():
			if wireGroup(wf.MapKey().Kind()) != wireGroup(rf.MapKey().Kind()) || wireGroup(wf.MapValue().Kind()) != wireGroup(rf.MapValue().Kind()) ||
				typeName(wf.MapValue()) != typeName(rf.MapValue()) {
				fail("field %d (%s) changed its map key or value type", wf.Number(), wf.Name())
			}
		case isNamed(wk) != isNamed(rk):
			fail("field %d (%s) changed kind from %s to %s", wf.Number(), wf.Name(), wk, rk)
		case isNamed(wk):
			if typeName(wf) != typeName(rf) {
				fail("field %d (%s) changed type from %s to %s", wf.Number(), wf.Name(), typeName(wf), typeName(rf))
			}
		case wireGroup(wk) != wireGroup(rk):
			fail("field %d (%s) changed scalar type from %s to %s (different wire types)", wf.Number(), wf.Name(), wk, rk)
		}
		if !wf.IsMap() && (wf.Cardinality() == protoreflect.Repeated) != (rf.Cardinality() == protoreflect.Repeated) {
			fail("field %d (%s) changed between repeated and singular", wf.Number(), wf.Name())
		}
		if rf.Cardinality() == protoreflect.Required && wf.Cardinality() != protoreflect.Required {
			fail("field %d (%s) became required", wf.Number(), wf.Name())
		}
		if ro := rf.ContainingOneof(); ro != nil && !ro.IsSynthetic() && (wf.ContainingOneof() == nil || wf.ContainingOneof().IsSynthetic()) {
			movedTo[ro.FullName()]++
		}
	}
	for name, n := range movedTo {
		if n > 1 {
			fail("%d existing fields moved into oneof %s", n, name)
		}
	}
	for i := range r.Fields().Len() {
		rf := r.Fields().Get(i)
		if w.Fields().ByNumber(rf.Number()) == nil && rf.Cardinality() == protoreflect.Required {
			fail("required field %d (%s) added", rf.Number(), rf.Name())
		}
	}
	return msgs
}

func isNamed(k protoreflect.Kind) bool {
	return k == protoreflect.MessageKind || k == protoreflect.GroupKind || k == protoreflect.EnumKind
}

func typeName(f protoreflect.FieldDescriptor) protoreflect.FullName {
	switch {
	case f.Message() != nil:
		return f.Message().FullName()
	case f.Enum() != nil:
		return f.Enum().FullName()
	}
	return protoreflect.FullName(f.Kind().String())
}
