package registry

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/raptormq/raptor/schema"
)

const (
	sV1 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}`
	sV2 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""}]}`
	sV3 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":""},{"name":"c","type":"int"}]}`
)

func openAt(t *testing.T, dir string) *Registry {
	t.Helper()
	fs, err := OpenFileStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(context.Background(), Config{Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if got := CodeOf(err); got != code {
		t.Fatalf("error code %d, want %d (%v)", got, code, err)
	}
}

func TestRegisterAndIDs(t *testing.T) {
	ctx := ctxT(t)
	r := openAt(t, t.TempDir())
	defer r.Close()
	a1, err := r.Register(ctx, "a", "", sV1)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Register(ctx, "a", "AVRO", " "+sV1+"\n")
	if err != nil || again.ID != a1.ID || again.Version != 1 {
		t.Fatalf("re-register: %+v %v", again, err)
	}
	b1, err := r.Register(ctx, "b", "", sV1)
	if err != nil || b1.ID != a1.ID || b1.Version != 1 {
		t.Fatalf("same schema in another subject: %+v %v (want id %d)", b1, err, a1.ID)
	}
	a2, err := r.Register(ctx, "a", "", sV2)
	if err != nil || a2.ID == a1.ID || a2.Version != 2 {
		t.Fatalf("v2: %+v %v", a2, err)
	}
	_, err = r.Register(ctx, "a", "", sV3) // c without default: not backward
	wantCode(t, err, CodeIncompatibleSchema)
	_, err = r.Register(ctx, "a", "", `{"type":"record"}`)
	wantCode(t, err, CodeInvalidSchema)
	_, err = r.Register(ctx, "a", "PROTOBUF", sV1)
	wantCode(t, err, CodeInvalidSchema)

	if got := r.Subjects(false); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("subjects %v", got)
	}
	vs, err := r.VersionsByID(a1.ID, false)
	if err != nil || len(vs) != 2 {
		t.Fatalf("versions by id: %v %v", vs, err)
	}
	_, err = r.SchemaByID(99)
	wantCode(t, err, CodeSchemaNotFound)
	_, err = r.Version("zz", 1, false)
	wantCode(t, err, CodeSubjectNotFound)
	_, err = r.Version("a", 7, false)
	wantCode(t, err, CodeVersionNotFound)
	l, err := r.Lookup("a", "", sV2, false)
	if err != nil || l.Version != 2 {
		t.Fatalf("lookup: %+v %v", l, err)
	}
	_, err = r.Lookup("a", "", sV3, false)
	wantCode(t, err, CodeSchemaNotFound)
}

func TestDeletes(t *testing.T) {
	ctx := ctxT(t)
	r := openAt(t, t.TempDir())
	defer r.Close()
	for _, s := range []string{sV1, sV2} {
		if _, err := r.Register(ctx, "s", "", s); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.DeleteVersion(ctx, "s", 1, true)
	wantCode(t, err, CodeSchemaVersionNotSoftDeleted)
	if v, err := r.DeleteVersion(ctx, "s", 1, false); err != nil || v != 1 {
		t.Fatalf("soft delete: %d %v", v, err)
	}
	_, err = r.DeleteVersion(ctx, "s", 1, false)
	wantCode(t, err, CodeSchemaVersionSoftDeleted)
	if vs, _ := r.Versions("s", false); !reflect.DeepEqual(vs, []int{2}) {
		t.Fatalf("live versions %v", vs)
	}
	if vs, _ := r.Versions("s", true); !reflect.DeepEqual(vs, []int{1, 2}) {
		t.Fatalf("all versions %v", vs)
	}
	if _, err := r.DeleteVersion(ctx, "s", 1, true); err != nil {
		t.Fatal(err)
	}
	_, err = r.DeleteSubject(ctx, "s", true)
	wantCode(t, err, CodeSubjectNotSoftDeleted)
	if vs, err := r.DeleteSubject(ctx, "s", false); err != nil || !reflect.DeepEqual(vs, []int{2}) {
		t.Fatalf("soft delete subject: %v %v", vs, err)
	}
	_, err = r.DeleteSubject(ctx, "s", false)
	wantCode(t, err, CodeSubjectSoftDeleted)
	if got := r.Subjects(false); len(got) != 0 {
		t.Fatalf("subjects after soft delete %v", got)
	}
	if got := r.Subjects(true); !reflect.DeepEqual(got, []string{"s"}) {
		t.Fatalf("deleted subjects %v", got)
	}
	if vs, err := r.DeleteSubject(ctx, "s", true); err != nil || !reflect.DeepEqual(vs, []int{2}) {
		t.Fatalf("hard delete subject: %v %v", vs, err)
	}
	_, err = r.DeleteSubject(ctx, "s", false)
	wantCode(t, err, CodeSubjectNotFound)
	// A re-registered schema keeps its global ID: IDs are never reused.
	sv, err := r.Register(ctx, "s", "", sV2)
	if err != nil || sv.ID != 2 || sv.Version != 1 {
		t.Fatalf("re-register after hard delete: %+v %v", sv, err)
	}
}

func TestLevels(t *testing.T) {
	ctx := ctxT(t)
	r := openAt(t, t.TempDir())
	defer r.Close()
	if l, _ := r.Level(""); l != schema.Backward {
		t.Fatalf("default level %s", l)
	}
	if _, err := r.Register(ctx, "s", "", sV1); err != nil {
		t.Fatal(err)
	}
	if err := r.SetLevel(ctx, "s", schema.None); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, "s", "", sV3); err != nil {
		t.Fatalf("NONE should accept: %v", err)
	}
	wantCode(t, r.SetLevel(ctx, "", "SIDEWAYS"), CodeInvalidCompatibilityLevel)
	if err := r.SetLevel(ctx, "", schema.Full); err != nil {
		t.Fatal(err)
	}
	if l, ok := r.Level("other"); l != schema.Full || ok {
		t.Fatalf("fallback to global: %s %v", l, ok)
	}
	prev, err := r.DeleteLevel(ctx, "s")
	if err != nil || prev != schema.None {
		t.Fatalf("delete subject level: %s %v", prev, err)
	}
	_, err = r.DeleteLevel(ctx, "s")
	wantCode(t, err, CodeSubjectLevelCompatNotConfigured)
	_, err = r.DeleteLevel(ctx, "nope")
	wantCode(t, err, CodeSubjectNotFound)
	if prev, err := r.DeleteLevel(ctx, ""); err != nil || prev != schema.Full {
		t.Fatalf("delete global: %s %v", prev, err)
	}
	ok, msgs, err := r.CheckCompatibility("s", -1, "", `{"type":"record","name":"T","fields":[{"name":"z","type":"int"}]}`)
	if err != nil || ok || len(msgs) == 0 {
		t.Fatalf("check: %v %v %v", ok, msgs, err)
	}
}

func TestFileStoreReopenAndTornTail(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	r := openAt(t, dir)
	sv, err := r.Register(ctx, "s", "", sV1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetLevel(ctx, "s", schema.FullTransitive); err != nil {
		t.Fatal(err)
	}
	// A second registry on the same directory is refused while the first runs.
	if _, err := OpenFileStore(dir, nil); err == nil {
		t.Fatal("second open of a locked store succeeded")
	}
	r.Close()
	// Simulate a crash in mid-append: a partial frame at the tail.
	path := filepath.Join(dir, LogFileName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	partial := appendFrame(nil, Record{Key: Key{Type: KeyConfig}, Value: []byte(`{"compatibilityLevel":"NONE"}`)})
	f.Write(partial[:len(partial)-3])
	f.Close()

	r = openAt(t, dir)
	defer r.Close()
	got, err := r.Version("s", 1, false)
	if err != nil || got.ID != sv.ID || got.Schema != sv.Schema {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	if l, ok := r.Level("s"); l != schema.FullTransitive || !ok {
		t.Fatalf("level after reopen %s", l)
	}
	if l, _ := r.Level(""); l != schema.Backward {
		t.Fatalf("torn global config applied: %s", l)
	}
	if _, err := r.Register(ctx, "s", "", sV2); err != nil {
		t.Fatalf("append after torn tail: %v", err)
	}
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want int
		code int
	}{
		{"1", 1, 0}, {"latest", -1, 0}, {"-1", -1, 0}, {"0", 0, CodeInvalidVersion},
		{"x", 0, CodeInvalidVersion}, {"2147483648", 0, CodeInvalidVersion}, {"-2", 0, CodeInvalidVersion},
	}
	for _, tc := range tests {
		v, err := ParseVersion(tc.in)
		if CodeOf(err) != tc.code || (err == nil && v != tc.want) {
			t.Fatalf("%q: %d %v", tc.in, v, err)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(appendFrame(nil, Record{Key: Key{Type: KeySchema, Subject: "s", Version: 1}, Value: []byte(`{}`)}))
	f.Add(appendFrame(nil, Record{Key: Key{Type: KeyID, ID: 3}}))
	f.Add(appendFrame(nil, Record{Key: Key{Type: KeyMode, Subject: "s"}, Value: []byte(`{"mode":"IMPORT"}`)}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := parseFrame(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		again := appendFrame(nil, rec)
		back, m, err := parseFrame(again)
		if err != nil {
			t.Fatalf("re-encoded frame rejected: %v", err)
		}
		if m != len(again) || !reflect.DeepEqual(back, rec) {
			t.Fatalf("round trip changed the record: %+v (%d bytes) vs %+v (%d bytes)", back, m, rec, len(again))
		}
		// The key is re-encoded canonically; with a canonical key, flags 0
		// (or 1 with no value bytes) the frame re-encodes to the bytes parsed.
		kl := int(binary.BigEndian.Uint32(b[9:]))
		flags := b[8]
		if bytes.Equal(b[13:13+kl], rec.Key.Bytes()) && (flags == 0 || flags == 1 && n == 13+kl) && !bytes.Equal(again, b[:n]) {
			t.Fatalf("frame %x re-encodes to %x", b[:n], again)
		}
	})
}

func TestFileStoreCompactsOnOpen(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	r := openAt(t, dir)
	sv, err := r.Register(ctx, "s", "", sV1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, "gone", "", sV2); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "gone", false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "gone", true); err != nil {
		t.Fatal(err)
	}
	var recs []Record
	for i := range 1500 {
		level := []schema.Level{schema.Full, schema.None, schema.Forward}[i%3]
		recs = append(recs, Record{Key: Key{Type: KeyConfig, Subject: "s"}, Value: mustJSON(ConfigValue{CompatibilityLevel: string(level)})})
	}
	if err := r.store.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	r.Close()
	path := filepath.Join(dir, LogFileName)
	before, _ := os.Stat(path)

	r = openAt(t, dir)
	after, _ := os.Stat(path)
	if after.Size() >= before.Size()/10 {
		t.Fatalf("log not compacted: %d -> %d bytes", before.Size(), after.Size())
	}
	check := func(r *Registry) {
		t.Helper()
		if l, ok := r.Level("s"); l != schema.Forward || !ok { // the last of the 1500 writes: 1499 % 3 == 2
			t.Fatalf("level %s", l)
		}
		if got, err := r.Version("s", 1, false); err != nil || got.ID != sv.ID {
			t.Fatalf("version: %+v %v", got, err)
		}
		if got := r.Subjects(true); !slices.Contains(got, "s") || slices.Contains(got, "gone") {
			t.Fatalf("subjects %v", got)
		}
		if _, err := r.SchemaByID(2); err != nil {
			t.Fatalf("the ID of a hard-deleted subject must survive compaction: %v", err)
		}
	}
	check(r)
	// The compacted file is locked and appendable; a reopen replays it.
	if _, err := OpenFileStore(dir, nil); err == nil {
		t.Fatal("compacted log not locked")
	}
	if _, err := r.Register(ctx, "t", "", sV1); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r = openAt(t, dir)
	defer r.Close()
	check(r)
	if _, err := r.Version("t", 1, false); err != nil {
		t.Fatal(err)
	}
}

// TestModeDurable: modes survive a restart of the file store, and a soft
// delete's removal of a subject's mode and level does too.
func TestModeDurable(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	r := openAt(t, dir)
	if _, err := r.Register(ctx, "s", "", sV1); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Register(ctx, "gone", "", sV1); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMode(ctx, "", Import, true); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMode(ctx, "s", ReadOnly, false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMode(ctx, "gone", ReadWrite, false); err != nil {
		t.Fatal(err)
	}
	if err := r.SetLevel(ctx, "gone", schema.None); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteSubject(ctx, "gone", false); err != nil {
		t.Fatal(err)
	}
	r.Close()
	r = openAt(t, dir)
	defer r.Close()
	if m, ok := r.ModeOf(""); m != Import || !ok {
		t.Fatalf("global mode after restart %s", m)
	}
	if m, ok := r.ModeOf("s"); m != ReadOnly || !ok {
		t.Fatalf("subject mode after restart %s %v", m, ok)
	}
	if m, ok := r.ModeOf("gone"); m != Import || ok {
		t.Fatalf("soft-deleted subject's mode after restart %s %v (want the global one, not configured)", m, ok)
	}
	if _, ok := r.Level("gone"); ok {
		t.Fatal("soft-deleted subject's level survived the restart")
	}
	_, err := r.RegisterSchema(ctx, "s", Request{Text: sV2, ID: 50})
	wantCode(t, err, CodeOperationNotPermitted)
}

// TestConfluentKeys: keys are byte for byte the ones Confluent's registry
// writes, so compaction of a shared topic collapses both registries'
// records; Confluent's other key types decode.
func TestConfluentKeys(t *testing.T) {
	cases := []struct {
		key  Key
		want string
	}{
		{Key{Type: KeySchema, Subject: "orders-value", Version: 3}, `{"keytype":"SCHEMA","subject":"orders-value","version":3,"magic":1}`},
		{Key{Type: KeyConfig}, `{"keytype":"CONFIG","subject":null,"magic":0}`},
		{Key{Type: KeyConfig, Subject: "a<b"}, `{"keytype":"CONFIG","subject":"a<b","magic":0}`},
		{Key{Type: KeyMode}, `{"keytype":"MODE","subject":null,"magic":0}`},
		{Key{Type: KeyMode, Subject: "s"}, `{"keytype":"MODE","subject":"s","magic":0}`},
		{Key{Type: KeyNoop}, `{"keytype":"NOOP","magic":0}`},
		{Key{Type: KeyDeleteSubject, Subject: "s"}, `{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}`},
	}
	for _, tc := range cases {
		if got := string(tc.key.Bytes()); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.key, got, tc.want)
		}
		back, err := DecodeKey([]byte(tc.want))
		if err != nil || back != tc.key {
			t.Errorf("decode %s: %+v %v", tc.want, back, err)
		}
	}
	// Other spellings of a global entry, and another property order.
	for _, alt := range []string{`{"keytype":"CONFIG","magic":0}`, `{"keytype":"CONFIG","subject":"","magic":0}`, `{"magic":0,"subject":null,"keytype":"CONFIG"}`} {
		if k, err := DecodeKey([]byte(alt)); err != nil || k != (Key{Type: KeyConfig}) {
			t.Errorf("decode %s: %+v %v", alt, k, err)
		}
	}
	for _, bad := range []string{`{"keytype":"WHAT","magic":0}`, `not json`, `{"keytype":"SCHEMA","subject":"s","magic":1}`, `{"keytype":"DELETE_SUBJECT","magic":0}`} {
		var ke *KeyError
		if _, err := DecodeKey([]byte(bad)); !errors.As(err, &ke) {
			t.Errorf("%s: %v, want *KeyError", bad, err)
		}
	}
}
