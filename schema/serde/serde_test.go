package serde

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/schema"
	"github.com/raptormq/raptor/schema/httpapi"
	"github.com/raptormq/raptor/schema/registry"
)

const (
	v1 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}`
	v2 = `{"type":"record","name":"T","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":"dflt"}]}`
)

func setup(t *testing.T) (*Serde, *atomic.Int64) {
	t.Helper()
	fs, err := registry.OpenFileStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(context.Background(), registry.Config{Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(httpapi.Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	var byID atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) > len("/schemas/ids/") && r.URL.Path[:len("/schemas/ids/")] == "/schemas/ids/" {
			byID.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { ts.Close(); reg.Close() })
	cl, err := sr.NewClient(sr.URLs(ts.URL))
	if err != nil {
		t.Fatal(err)
	}
	return New(cl), &byID
}

func TestEncodeDecodeAcrossVersions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	writer, fetches := setup(t)
	enc, err := writer.Register(ctx, "t-value", v1)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := enc.Encode(map[string]any{"a": 5})
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] != byte(schema.FormatMsgpack) || enc.ID() == 0 {
		t.Fatalf("frame %x id %d", payload, enc.ID())
	}
	dec := writer.NewDecoder(schema.MustParse(v2))
	for range 3 {
		got, err := dec.Decode(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"a": int64(5), "b": "dflt"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v want %#v", got, want)
		}
	}
	// The writer's Serde learnt the schema when registering: no fetch.
	if n := fetches.Load(); n != 0 {
		t.Fatalf("%d fetches by id, want 0", n)
	}
	var out struct {
		A int64  `msgpack:"a"`
		B string `msgpack:"b"`
	}
	if err := dec.DecodeInto(ctx, payload, &out); err != nil || out.A != 5 || out.B != "dflt" {
		t.Fatalf("into struct: %+v %v", out, err)
	}

	// A second application fetches the writer schema once, then caches it.
	reader := New(writer.cl)
	rdec := reader.NewDecoder(schema.MustParse(v2))
	for range 5 {
		if _, err := rdec.Decode(ctx, payload); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches by id, want 1", n)
	}

	// Errors: unknown ID, bad frame, unresolvable reader, unregistered lookup.
	bad := schema.AppendHeader(nil, 999)
	bad = append(bad, 0x80)
	var re *sr.ResponseError
	if _, err := rdec.Decode(ctx, bad); !errors.As(err, &re) || re.ErrorCode != 40403 {
		t.Fatalf("unknown id: %v", err)
	}
	var fe *schema.FrameError
	if _, err := rdec.Decode(ctx, []byte{1, 0, 0, 0, 1}); !errors.As(err, &fe) {
		t.Fatalf("bad magic: %v", err)
	}
	narrow := reader.NewDecoder(schema.MustParse(`{"type":"record","name":"T","fields":[{"name":"a","type":"string"}]}`))
	var rse *schema.ResolveError
	if _, err := narrow.Decode(ctx, payload); !errors.As(err, &rse) || rse.Path != "a" {
		t.Fatalf("unresolvable: %v", err)
	}
	if _, err := reader.Lookup(ctx, "t-value", v2); !errors.As(err, &re) || re.ErrorCode != 40403 {
		t.Fatalf("lookup of unregistered schema: %v", err)
	}
	if e, err := reader.Lookup(ctx, "t-value", v1); err != nil || e.ID() != enc.ID() {
		t.Fatalf("lookup: %v", err)
	}
	if _, err := enc.Encode(map[string]any{"a": "no"}); err == nil {
		t.Fatal("encoding a string as int succeeded")
	}
}

// Unknown IDs are answered from a negative cache until it expires, on a
// clock the test moves by hand.
func TestNotFoundCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base, fetches := setup(t)
	now := time.Unix(1000, 0)
	s := New(base.cl, NotFoundTTL(time.Minute))
	s.now = func() time.Time { return now }
	dec := s.NewDecoder(schema.MustParse(v1))
	payload := append(schema.AppendFrameHeader(nil, schema.FormatMsgpack, 1), 0x81, 0xa1, 'a', 0x01)
	for range 5 {
		if _, err := dec.Decode(ctx, payload); err == nil {
			t.Fatal("unknown id decoded")
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for a cached miss, want 1", n)
	}
	// The schema gets registered; after the TTL the decoder finds it.
	if _, err := base.Register(ctx, "t-value", v1); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode(ctx, payload); err == nil {
		t.Fatal("miss not cached")
	}
	now = now.Add(time.Minute)
	got, err := dec.Decode(ctx, payload)
	if err != nil || !reflect.DeepEqual(got, map[string]any{"a": int32(1)}) {
		t.Fatalf("after expiry: %v %v", got, err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}
