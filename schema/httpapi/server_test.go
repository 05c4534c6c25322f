package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/schema/registry"
)

const (
	v1 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}`
	v2 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}]}`
	// incompatible under BACKWARD: new field without default
	vBad = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"c","type":"long"}]}`
)

func newServer(t *testing.T) (*httptest.Server, *registry.Registry) {
	t.Helper()
	fs, err := registry.OpenFileStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(context.Background(), registry.Config{Store: fs})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); reg.Close() })
	return ts, reg
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantSRCode(t *testing.T, err error, code int) {
	t.Helper()
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want *sr.ResponseError with code %d, got %v", code, err)
	}
	if re.ErrorCode != code {
		t.Fatalf("error code %d (%q), want %d", re.ErrorCode, re.Message, code)
	}
	if want := code; want > 1000 {
		if re.StatusCode != want/100 {
			t.Fatalf("HTTP status %d for code %d", re.StatusCode, code)
		}
	}
}

// TestFranzGoClient drives every endpoint through franz-go's own registry
// client, including the error cases.
func TestFranzGoClient(t *testing.T) {
	ts, _ := newServer(t)
	ctx := testCtx(t)
	cl, err := sr.NewClient(sr.URLs(ts.URL))
	if err != nil {
		t.Fatal(err)
	}

	types, err := cl.SupportedTypes(ctx)
	slices.Sort(types)
	if err != nil || !reflect.DeepEqual(types, []sr.SchemaType{sr.TypeAvro, sr.TypeProtobuf, sr.TypeJSON}) {
		t.Fatalf("types %v %v", types, err)
	}

	// Register, re-register, same schema in another subject.
	ss, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v1})
	if err != nil || ss.Version != 1 || ss.ID < 1 {
		t.Fatalf("create: %+v %v", ss, err)
	}
	id1 := ss.ID
	if id, err := cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: v1}, -1, -1); err != nil || id != id1 {
		t.Fatalf("re-register: %d %v", id, err)
	}
	other, err := cl.CreateSchema(ctx, "audit-value", sr.Schema{Schema: v1, Type: sr.TypeAvro})
	if err != nil || other.ID != id1 {
		t.Fatalf("same schema, other subject: %+v %v", other, err)
	}
	ss2, err := cl.CreateSchema(ctx, "orders-value", sr.Schema{Schema: v2})
	if err != nil || ss2.Version != 2 || ss2.ID == id1 {
		t.Fatalf("v2: %+v %v", ss2, err)
	}

	// Error cases on register.
	_, err = cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: vBad}, -1, -1)
	wantSRCode(t, err, 409)
	_, err = cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: `{"type":"record","name":"X"}`}, -1, -1)
	wantSRCode(t, err, 42201)
	_, err = cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: v1, Type: sr.TypeProtobuf}, -1, -1)
	wantSRCode(t, err, 42201)

	// Subjects and versions.
	subs, err := cl.Subjects(ctx)
	if err != nil || !reflect.DeepEqual(subs, []string{"audit-value", "orders-value"}) {
		t.Fatalf("subjects %v %v", subs, err)
	}
	vs, err := cl.SubjectVersions(ctx, "orders-value")
	if err != nil || !reflect.DeepEqual(vs, []int{1, 2}) {
		t.Fatalf("versions %v %v", vs, err)
	}
	_, err = cl.SubjectVersions(ctx, "nope")
	wantSRCode(t, err, 40401)
	latest, err := cl.SchemaByVersion(ctx, "orders-value", -1)
	if err != nil || latest.Version != 2 || latest.ID != ss2.ID || latest.Subject != "orders-value" {
		t.Fatalf("latest %+v %v", latest, err)
	}
	first, err := cl.SchemaByVersion(ctx, "orders-value", 1)
	if err != nil || first.ID != id1 {
		t.Fatalf("version 1 %+v %v", first, err)
	}
	_, err = cl.SchemaByVersion(ctx, "orders-value", 9)
	wantSRCode(t, err, 40402)
	_, err = cl.SchemaByVersion(ctx, "nope", 1)
	wantSRCode(t, err, 40401)
	text, err := cl.SchemaTextByVersion(ctx, "orders-value", 1)
	if err != nil || text != first.Schema.Schema {
		t.Fatalf("raw text %q %v", text, err)
	}
	all, err := cl.Schemas(ctx, "orders-value")
	if err != nil || len(all) != 2 {
		t.Fatalf("schemas %v %v", all, err)
	}
	everything, err := cl.AllSchemas(ctx)
	if err != nil || len(everything) != 3 {
		t.Fatalf("all schemas %v %v", everything, err)
	}

	// Schemas by ID.
	byID, err := cl.SchemaByID(ctx, id1)
	if err != nil || byID.Schema != first.Schema.Schema {
		t.Fatalf("by id %+v %v", byID, err)
	}
	if raw, err := cl.SchemaTextByID(ctx, id1); err != nil || raw != byID.Schema {
		t.Fatalf("raw by id %q %v", raw, err)
	}
	_, err = cl.SchemaByID(ctx, 999)
	wantSRCode(t, err, 40403)
	if s, err := cl.SubjectsByID(ctx, id1); err != nil || !reflect.DeepEqual(s, []string{"audit-value", "orders-value"}) {
		t.Fatalf("subjects by id %v %v", s, err)
	}
	svs, err := cl.SchemaVersionsByID(ctx, id1)
	if err != nil || !reflect.DeepEqual(svs, []sr.SubjectVersion{{Subject: "audit-value", Version: 1}, {Subject: "orders-value", Version: 1}}) {
		t.Fatalf("versions by id %v %v", svs, err)
	}
	_, err = cl.SchemaVersionsByID(ctx, 999)
	wantSRCode(t, err, 40403)

	// Lookup.
	found, err := cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: v2})
	if err != nil || found.Version != 2 || found.ID != ss2.ID {
		t.Fatalf("lookup %+v %v", found, err)
	}
	_, err = cl.LookupSchema(ctx, "orders-value", sr.Schema{Schema: vBad})
	wantSRCode(t, err, 40403)
	_, err = cl.LookupSchema(ctx, "nope", sr.Schema{Schema: v1})
	wantSRCode(t, err, 40401)

	// Compatibility checks, with verbose.
	vctx := sr.WithParams(ctx, sr.Verbose)
	res, err := cl.CheckCompatibility(vctx, "orders-value", -1, sr.Schema{Schema: vBad})
	if err != nil || res.Is || len(res.Messages) == 0 || !strings.Contains(strings.Join(res.Messages, " "), "c") {
		t.Fatalf("check bad: %+v %v", res, err)
	}
	res, err = cl.CheckCompatibility(ctx, "orders-value", 1, sr.Schema{Schema: v2})
	if err != nil || !res.Is {
		t.Fatalf("check good: %+v %v", res, err)
	}
	res, err = cl.CheckCompatibility(ctx, "orders-value", -2, sr.Schema{Schema: v2})
	if err != nil || !res.Is {
		t.Fatalf("check all: %+v %v", res, err)
	}
	_, err = cl.CheckCompatibility(ctx, "orders-value", 7, sr.Schema{Schema: v2})
	wantSRCode(t, err, 40402)
	_, err = cl.CheckCompatibility(ctx, "nope", -1, sr.Schema{Schema: v2})
	wantSRCode(t, err, 40401)
	_, err = cl.CheckCompatibility(ctx, "orders-value", -1, sr.Schema{Schema: "{"})
	wantSRCode(t, err, 42201)

	// Config: global and per subject.
	g := cl.Compatibility(ctx)
	if g[0].Err != nil || g[0].Level != sr.CompatBackward {
		t.Fatalf("global config %+v", g[0])
	}
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "orders-value")
	if set[0].Err != nil || set[0].Level != sr.CompatNone {
		t.Fatalf("set subject config %+v", set[0])
	}
	got := cl.Compatibility(ctx, "orders-value")
	if got[0].Err != nil || got[0].Level != sr.CompatNone {
		t.Fatalf("subject config %+v", got[0])
	}
	if _, err := cl.RegisterSchema(ctx, "orders-value", sr.Schema{Schema: vBad}, -1, -1); err != nil {
		t.Fatalf("NONE must accept: %v", err)
	}
	unset := cl.Compatibility(ctx, "audit-value")
	wantSRCode(t, unset[0].Err, 40408)
	dflt := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "audit-value")
	if dflt[0].Err != nil || dflt[0].Level != sr.CompatBackward {
		t.Fatalf("defaultToGlobal %+v", dflt[0])
	}
	reset := cl.ResetCompatibility(ctx, "orders-value")
	if reset[0].Err != nil || reset[0].Level != sr.CompatNone {
		t.Fatalf("reset subject %+v", reset[0])
	}
	if set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}); set[0].Err != nil {
		t.Fatal(set[0].Err)
	}
	if g := cl.Compatibility(ctx); g[0].Level != sr.CompatFullTransitive {
		t.Fatalf("global after set %+v", g[0])
	}
	if reset := cl.ResetCompatibility(ctx); reset[0].Err != nil || reset[0].Level != sr.CompatFullTransitive {
		t.Fatalf("reset global %+v", reset[0])
	}
	if g := cl.Compatibility(ctx); g[0].Level != sr.CompatBackward {
		t.Fatalf("global after reset %+v", g[0])
	}

	// Deletes: soft, then hard; the error cases in between.
	err = cl.DeleteSchema(ctx, "orders-value", 1, sr.HardDelete)
	wantSRCode(t, err, 40407)
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	err = cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete)
	wantSRCode(t, err, 40406)
	if vs, _ := cl.SubjectVersions(ctx, "orders-value"); !reflect.DeepEqual(vs, []int{2, 3}) {
		t.Fatalf("versions after soft delete %v", vs)
	}
	if vs, _ := cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), "orders-value"); !reflect.DeepEqual(vs, []int{1, 2, 3}) {
		t.Fatalf("versions with deleted %v", vs)
	}
	_, err = cl.SchemaByVersion(ctx, "orders-value", 1)
	wantSRCode(t, err, 40402)
	if err := cl.DeleteSchema(ctx, "orders-value", 1, sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	err = cl.DeleteSchema(ctx, "orders-value", 1, sr.SoftDelete)
	wantSRCode(t, err, 40402)
	_, err = cl.DeleteSubject(ctx, "orders-value", sr.HardDelete)
	wantSRCode(t, err, 40405)
	deleted, err := cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete)
	if err != nil || !reflect.DeepEqual(deleted, []int{2, 3}) {
		t.Fatalf("soft delete subject %v %v", deleted, err)
	}
	_, err = cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete)
	wantSRCode(t, err, 40404)
	if subs, _ := cl.Subjects(ctx); !reflect.DeepEqual(subs, []string{"audit-value"}) {
		t.Fatalf("subjects after delete %v", subs)
	}
	if subs, _ := cl.Subjects(sr.WithParams(ctx, sr.ShowDeleted)); !slices.Contains(subs, "orders-value") {
		t.Fatalf("deleted subjects %v", subs)
	}
	if _, err := cl.DeleteSubject(ctx, "orders-value", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	_, err = cl.DeleteSubject(ctx, "orders-value", sr.SoftDelete)
	wantSRCode(t, err, 40401)
	// The ID survives a hard delete of one subject: audit-value still uses it.
	if _, err := cl.SchemaByID(ctx, id1); err != nil {
		t.Fatal(err)
	}
}

// TestRawErrors checks error bodies the client above cannot produce.
func TestRawErrors(t *testing.T) {
	ts, _ := newServer(t)
	tests := []struct {
		method, path, body string
		status, code       int
	}{
		{"GET", "/subjects/s/versions/0", "", 422, 42202},
		{"GET", "/subjects/s/versions/abc", "", 422, 42202},
		{"PUT", "/config", `{"compatibility":"SIDEWAYS"}`, 422, 42203},
		{"POST", "/subjects/s/versions", `{"schema":`, 422, 422},
		{"POST", "/subjects/s/versions", `{"schema":"\"int\"","references":[{"name":"x","subject":"y","version":1}]}`, 422, 42201},
		{"GET", "/nowhere", "", 404, 404},
		{"PATCH", "/subjects", "", 405, 405},
		{"GET", "/schemas/ids/x", "", 404, 40403},
		{"DELETE", "/config/none", "", 404, 40401},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var body struct {
				Code    int    `json:"error_code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if resp.StatusCode != tc.status || body.Code != tc.code || body.Message == "" {
				t.Fatalf("status %d code %d (%q), want %d %d", resp.StatusCode, body.Code, body.Message, tc.status, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != ContentType {
				t.Fatalf("content type %q", ct)
			}
		})
	}
}

// TestForwarding runs a secondary in front of a primary sharing nothing but
// HTTP: writes sent to the secondary land on the primary.
func TestForwarding(t *testing.T) {
	primary, preg := newServer(t)
	_, sreg := newServer(t)
	h, err := New(Config{Registry: sreg, Primary: primary.URL})
	if err != nil {
		t.Fatal(err)
	}
	secondary := httptest.NewServer(h)
	defer secondary.Close()
	ctx := testCtx(t)
	cl, err := sr.NewClient(sr.URLs(secondary.URL))
	if err != nil {
		t.Fatal(err)
	}
	id, err := cl.RegisterSchema(ctx, "s", sr.Schema{Schema: v1}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if sv, err := preg.Version("s", 1, false); err != nil || sv.ID != id {
		t.Fatalf("primary did not get the write: %+v %v", sv, err)
	}
	_, err = cl.RegisterSchema(ctx, "s", sr.Schema{Schema: vBad}, -1, -1)
	wantSRCode(t, err, 409)
	if _, err := New(Config{Registry: sreg, Primary: "ftp://x"}); err == nil {
		t.Fatal("bad primary URL accepted")
	}
	// A dead primary is a 50003 forwarding error, not a hang.
	deadH, _ := New(Config{Registry: sreg, Primary: "http://127.0.0.1:1"})
	dead := httptest.NewServer(deadH)
	defer dead.Close()
	dcl, _ := sr.NewClient(sr.URLs(dead.URL))
	_, err = dcl.RegisterSchema(ctx, "s", sr.Schema{Schema: v2}, -1, -1)
	wantSRCode(t, err, 50003)
}
