package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

func srClient(t *testing.T, url string) *sr.Client {
	t.Helper()
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestSoftDeleteDropsSettings: Confluent's soft delete of a subject (or of
// its last live version) removes the subject's level and mode, so a
// re-registered subject is checked under the global level; hard deletes
// need a soft delete first.
func TestSoftDeleteDropsSettings(t *testing.T) {
	ts, _ := newServer(t)
	ctx := testCtx(t)
	cl := srClient(t, ts.URL)

	for _, how := range []string{"subject", "last version"} {
		t.Run(how, func(t *testing.T) {
			subj := "del-" + strings.ReplaceAll(how, " ", "-")
			if _, err := cl.CreateSchema(ctx, subj, sr.Schema{Schema: v1}); err != nil {
				t.Fatal(err)
			}
			if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, subj); r[0].Err != nil {
				t.Fatal(r[0].Err)
			}
			if r := cl.SetMode(ctx, sr.ModeReadWrite, subj); r[0].Err != nil {
				t.Fatal(r[0].Err)
			}
			if r := cl.Mode(ctx, subj); r[0].Err != nil || r[0].Mode != sr.ModeReadWrite {
				t.Fatalf("subject mode before: %+v", r[0])
			}
			// Hard delete before soft delete: 40405 / 40407.
			_, err := cl.DeleteSubject(ctx, subj, sr.HardDelete)
			wantSRCode(t, err, 40405)
			wantSRCode(t, cl.DeleteSchema(ctx, subj, 1, sr.HardDelete), 40407)
			if how == "subject" {
				if vs, err := cl.DeleteSubject(ctx, subj, sr.SoftDelete); err != nil || !reflect.DeepEqual(vs, []int{1}) {
					t.Fatalf("soft delete: %v %v", vs, err)
				}
				_, err = cl.DeleteSubject(ctx, subj, sr.SoftDelete)
				wantSRCode(t, err, 40404)
			} else {
				if err := cl.DeleteSchema(ctx, subj, 1, sr.SoftDelete); err != nil {
					t.Fatal(err)
				}
				wantSRCode(t, cl.DeleteSchema(ctx, subj, 1, sr.SoftDelete), 40406)
			}
			wantSRCode(t, cl.Compatibility(ctx, subj)[0].Err, 40408)
			wantSRCode(t, cl.Mode(ctx, subj)[0].Err, 40409)
			// Re-registered: v1 again, then vBad is checked under the global
			// BACKWARD level, not the dropped NONE.
			if _, err := cl.CreateSchema(ctx, subj, sr.Schema{Schema: v1}); err != nil {
				t.Fatal(err)
			}
			_, err = cl.RegisterSchema(ctx, subj, sr.Schema{Schema: vBad}, -1, -1)
			wantSRCode(t, err, 409)
			// Hard delete after soft delete.
			if _, err := cl.DeleteSubject(ctx, subj, sr.SoftDelete); err != nil {
				t.Fatal(err)
			}
			if vs, err := cl.DeleteSubject(ctx, subj, sr.HardDelete); err != nil || len(vs) != 2 {
				t.Fatalf("hard delete: %v %v", vs, err)
			}
			_, err = cl.SubjectVersions(sr.WithParams(ctx, sr.ShowDeleted), subj)
			wantSRCode(t, err, 40401)
		})
	}
}

// TestModes drives /mode and /mode/{subject} through franz-go: READONLY
// refuses writes, IMPORT keeps explicit IDs and versions, with Confluent's
// error codes.
func TestModes(t *testing.T) {
	ts, _ := newServer(t)
	ctx := testCtx(t)
	cl := srClient(t, ts.URL)

	if r := cl.Mode(ctx); r[0].Err != nil || r[0].Mode != sr.ModeReadWrite {
		t.Fatalf("global mode: %+v", r[0])
	}
	// IMPORT on an empty registry needs no force.
	if r := cl.SetMode(ctx, sr.ModeImport); r[0].Err != nil || r[0].Mode != sr.ModeImport {
		t.Fatalf("set IMPORT: %+v", r[0])
	}
	_, err := cl.RegisterSchema(ctx, "imp", sr.Schema{Schema: v1}, -1, -1)
	wantSRCode(t, err, 42205) // IMPORT needs an explicit id
	ss, err := cl.CreateSchemaWithIDAndVersion(ctx, "imp", sr.Schema{Schema: v1}, 100, 7)
	if err != nil || ss.ID != 100 || ss.Version != 7 {
		t.Fatalf("import id 100 version 7: %+v %v", ss, err)
	}
	// IMPORT skips compatibility checks.
	if id, err := cl.RegisterSchema(ctx, "imp", sr.Schema{Schema: vBad}, 101, -1); err != nil || id != 101 {
		t.Fatalf("import incompatible: %d %v", id, err)
	}
	_, err = cl.RegisterSchema(ctx, "imp", sr.Schema{Schema: v2}, 100, -1)
	wantSRCode(t, err, 42205) // id 100 holds another schema
	_, err = cl.RegisterSchema(ctx, "imp", sr.Schema{Schema: v1}, 102, -1)
	wantSRCode(t, err, 42207) // v1 is registered with id 100
	_, err = cl.RegisterSchema(ctx, "imp", sr.Schema{Schema: v2}, 103, 7)
	wantSRCode(t, err, 42205) // version 7 is taken

	// Back to READWRITE: new IDs follow the imported ones.
	if r := cl.ResetMode(ctx); r[0].Err != nil || r[0].Mode != sr.ModeImport {
		t.Fatalf("reset global mode: %+v", r[0])
	}
	_, err = cl.RegisterSchema(ctx, "rw", sr.Schema{Schema: v1}, 5, -1)
	wantSRCode(t, err, 42205) // explicit id outside IMPORT
	ss, err = cl.CreateSchema(ctx, "rw", sr.Schema{Schema: v2})
	if err != nil || ss.ID != 102 || ss.Version != 1 {
		t.Fatalf("after import: %+v %v (want id 102)", ss, err)
	}
	// IMPORT on a non-empty registry needs force.
	wantSRCode(t, cl.SetMode(ctx, sr.ModeImport)[0].Err, 42205)
	wantSRCode(t, cl.SetMode(ctx, sr.ModeImport, "rw")[0].Err, 42205)
	if r := cl.SetMode(sr.WithParams(ctx, sr.Force), sr.ModeImport, "rw"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if r := cl.ResetMode(ctx, "rw"); r[0].Err != nil || r[0].Mode != sr.ModeImport {
		t.Fatalf("reset subject mode: %+v", r[0])
	}

	// READONLY, per subject and global.
	if r := cl.SetMode(ctx, sr.ModeReadOnly, "rw"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	_, err = cl.RegisterSchema(ctx, "rw", sr.Schema{Schema: v1}, -1, -1)
	wantSRCode(t, err, 42205)
	_, err = cl.DeleteSubject(ctx, "rw", sr.SoftDelete)
	wantSRCode(t, err, 42205)
	wantSRCode(t, cl.DeleteSchema(ctx, "rw", 1, sr.SoftDelete), 42205)
	if _, err := cl.CreateSchema(ctx, "other", sr.Schema{Schema: v1}); err != nil {
		t.Fatalf("other subject stays writable: %v", err)
	}
	if r := cl.Mode(ctx, "rw", "other"); r[0].Mode != sr.ModeReadOnly || r[0].Err != nil {
		t.Fatalf("subject mode: %+v", r[0])
	} else {
		wantSRCode(t, r[1].Err, 40409)
	}
	if r := cl.Mode(sr.WithParams(ctx, sr.DefaultToGlobal), "other"); r[0].Err != nil || r[0].Mode != sr.ModeReadWrite {
		t.Fatalf("defaultToGlobal: %+v", r[0])
	}
	wantSRCode(t, cl.ResetMode(ctx, "other")[0].Err, 40409)
	wantSRCode(t, cl.ResetMode(ctx, "nope")[0].Err, 40401)
	if r := cl.SetMode(ctx, sr.ModeReadOnly); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	_, err = cl.RegisterSchema(ctx, "other", sr.Schema{Schema: v2}, -1, -1)
	wantSRCode(t, err, 42205)
	cl.ResetMode(ctx)

	// An unknown mode: 42204.
	var out json.RawMessage
	wantSRCode(t, cl.Do(ctx, http.MethodPut, "/mode", map[string]string{"mode": "WRITEONLY"}, &out), 42204)
	wantSRCode(t, cl.Do(ctx, http.MethodPut, "/mode/rw", map[string]string{"mode": ""}, &out), 42204)
}

func TestContexts(t *testing.T) {
	ts, _ := newServer(t)
	got, err := srClient(t, ts.URL).Contexts(testCtx(t))
	if err != nil || !reflect.DeepEqual(got, []string{"."}) {
		t.Fatalf("contexts %v %v", got, err)
	}
}

// TestSchemasByIDUsages drives /schemas/ids/{id}/subjects and /versions,
// with and without deleted versions.
func TestSchemasByIDUsages(t *testing.T) {
	ts, _ := newServer(t)
	ctx := testCtx(t)
	cl := srClient(t, ts.URL)
	a, err := cl.CreateSchema(ctx, "a", sr.Schema{Schema: v1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(ctx, "b", sr.Schema{Schema: v1}); err != nil {
		t.Fatal(err)
	}
	if err := cl.DeleteSchema(ctx, "a", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	subs, err := cl.SubjectsByID(ctx, a.ID)
	if err != nil || !reflect.DeepEqual(subs, []string{"b"}) {
		t.Fatalf("subjects by id %v %v", subs, err)
	}
	subs, err = cl.SubjectsByID(sr.WithParams(ctx, sr.ShowDeleted), a.ID)
	if err != nil || !reflect.DeepEqual(subs, []string{"a", "b"}) {
		t.Fatalf("subjects by id, deleted %v %v", subs, err)
	}
	vs, err := cl.SchemaVersionsByID(sr.WithParams(ctx, sr.ShowDeleted), a.ID)
	if err != nil || !reflect.DeepEqual(vs, []sr.SubjectVersion{{Subject: "a", Version: 1}, {Subject: "b", Version: 1}}) {
		t.Fatalf("versions by id %v %v", vs, err)
	}
	_, err = cl.SubjectsByID(ctx, 999)
	wantSRCode(t, err, 40403)
	_, err = cl.SchemaVersionsByID(ctx, 999)
	wantSRCode(t, err, 40403)
}

// TestAvroReferences registers a record type in one subject and a schema
// using it in another, through franz-go, with referencedby and the
// reference checks.
func TestAvroReferences(t *testing.T) {
	ts, _ := newServer(t)
	ctx := testCtx(t)
	cl := srClient(t, ts.URL)
	const address = `{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"city","type":"string"}]}`
	const order = `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"id","type":"long"},{"name":"ship","type":"com.acme.Address"}]}`
	const order2 = `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"id","type":"long"},{"name":"ship","type":"com.acme.Address"},{"name":"note","type":"string","default":""}]}`
	addr, err := cl.CreateSchema(ctx, "address", sr.Schema{Schema: address})
	if err != nil {
		t.Fatal(err)
	}
	refs := []sr.SchemaReference{{Name: "com.acme.Address", Subject: "address", Version: 1}}
	// Without the reference the type is unknown: 42201.
	_, err = cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order}, -1, -1)
	wantSRCode(t, err, 42201)
	_, err = cl.RegisterSchema(ctx, "order", sr.Schema{Schema: order, References: []sr.SchemaReference{{Name: "com.acme.Address", Subject: "address", Version: 9}}}, -1, -1)
	wantSRCode(t, err, 42201)
	o, err := cl.CreateSchema(ctx, "order", sr.Schema{Schema: order, References: refs})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.References, refs) || o.Schema.Schema != order {
		t.Fatalf("registered %+v", o)
	}
	byID, err := cl.SchemaByID(ctx, o.ID)
	if err != nil || !reflect.DeepEqual(byID.References, refs) || byID.Type != sr.TypeAvro {
		t.Fatalf("by id %+v %v", byID, err)
	}
	if got, err := cl.LookupSchema(ctx, "order", sr.Schema{Schema: order, References: refs}); err != nil || got.ID != o.ID {
		t.Fatalf("lookup %+v %v", got, err)
	}
	// Version -1 in a reference is the latest, stored as the number it meant.
	latestRefs := []sr.SchemaReference{{Name: "com.acme.Address", Subject: "address", Version: -1}}
	if got, err := cl.LookupSchema(ctx, "order", sr.Schema{Schema: order, References: latestRefs}); err != nil || got.ID != o.ID || got.References[0].Version != 1 {
		t.Fatalf("lookup with the latest reference %+v %v", got, err)
	}
	res, err := cl.CheckCompatibility(ctx, "order", -1, sr.Schema{Schema: order2, References: refs})
	if err != nil || !res.Is {
		t.Fatalf("compatible with references: %+v %v", res, err)
	}
	users, err := cl.SchemaReferences(ctx, "address", 1)
	if err != nil || len(users) != 1 || users[0].Subject != "order" || users[0].ID != o.ID {
		t.Fatalf("referencedby %+v %v", users, err)
	}
	var ids []int
	if err := cl.Do(ctx, http.MethodGet, "/subjects/address/versions/latest/referencedby", nil, &ids); err != nil || !reflect.DeepEqual(ids, []int{o.ID}) {
		t.Fatalf("referencedby ids %v %v", ids, err)
	}
	_, err = cl.SchemaReferences(ctx, "address", 2)
	wantSRCode(t, err, 40402)
	_, err = cl.SchemaReferences(ctx, "nope", 1)
	wantSRCode(t, err, 40401)
	wantSRCode(t, cl.Do(ctx, http.MethodGet, "/subjects/address/versions/first/referencedby", nil, &ids), 42202)
	// A referenced schema cannot be deleted: 42206.
	wantSRCode(t, cl.DeleteSchema(ctx, "address", 1, sr.SoftDelete), 42206)
	_, err = cl.DeleteSubject(ctx, "address", sr.SoftDelete)
	wantSRCode(t, err, 42206)
	// Once the user is gone (soft), the referenced one may be soft-deleted,
	// but not hard-deleted while the soft-deleted user still needs it.
	if _, err := cl.DeleteSubject(ctx, "order", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "address", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	_, err = cl.DeleteSubject(ctx, "address", sr.HardDelete)
	wantSRCode(t, err, 42206)
	if _, err := cl.DeleteSubject(ctx, "order", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DeleteSubject(ctx, "address", sr.HardDelete); err != nil {
		t.Fatal(err)
	}
	// IDs stay readable within the process.
	if got, err := cl.SchemaByID(ctx, addr.ID); err != nil || got.Schema != address {
		t.Fatalf("hard-deleted id: %+v %v", got, err)
	}
}

// TestAsRegisteredAndNormalize: schemas come back byte for byte as
// registered; layout and key order do not change identity; ?normalize=true
// stores the normalised form.
func TestAsRegisteredAndNormalize(t *testing.T) {
	ts, _ := newServer(t)
	ctx := testCtx(t)
	cl := srClient(t, ts.URL)
	const text = "{\n  \"type\": \"record\", \"name\": \"T\",\n  \"fields\": [{\"type\": \"int\", \"name\": \"a\"}]\n}"
	ss, err := cl.CreateSchema(ctx, "raw", sr.Schema{Schema: text})
	if err != nil {
		t.Fatal(err)
	}
	if ss.Schema.Schema != text {
		t.Fatalf("returned %q, registered %q", ss.Schema.Schema, text)
	}
	if got, _ := cl.SchemaTextByID(ctx, ss.ID); got != text {
		t.Fatalf("raw by id %q", got)
	}
	// v1 is the same schema in another layout and key order.
	if got, err := cl.LookupSchema(ctx, "raw", sr.Schema{Schema: v1}); err != nil || got.ID != ss.ID {
		t.Fatalf("lookup in another layout: %+v %v", got, err)
	}
	if id, err := cl.RegisterSchema(ctx, "raw", sr.Schema{Schema: v1}, -1, -1); err != nil || id != ss.ID {
		t.Fatalf("re-register in another layout: %d %v", id, err)
	}
	n, err := cl.CreateSchema(sr.WithParams(ctx, sr.Normalize), "norm", sr.Schema{Schema: strings.ReplaceAll(v2, `"name":"T"`, `"name" : "T"`)})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"fields":[{"name":"a","type":"int"},{"default":"x","name":"b","type":"string"}],"name":"T","type":"record"}`
	if n.Schema.Schema != want {
		t.Fatalf("normalised %q, want %q", n.Schema.Schema, want)
	}
}

// TestContentNegotiation: Accept and Content-Type as Confluent's registry
// answers them: 406 for an Accept that admits none of its types, 415 for a
// body that is not JSON.
func TestContentNegotiation(t *testing.T) {
	ts, _ := newServer(t)
	body := `{"schema":` + strings.TrimSpace(mustQuote(v1)) + `}`
	cases := []struct {
		name, method, path, accept, ctype string
		status                            int
		wantType                          string
	}{
		{"no accept", "GET", "/subjects", "", "", 200, ContentType},
		{"v1", "GET", "/subjects", ContentType, "", 200, ContentType},
		{"vnd", "GET", "/subjects", "application/vnd.schemaregistry+json", "", 200, "application/vnd.schemaregistry+json"},
		{"json", "GET", "/subjects", "application/json", "", 200, "application/json"},
		{"any", "GET", "/subjects", "*/*", "", 200, ContentType},
		{"application any", "GET", "/subjects", "application/*", "", 200, ContentType},
		{"browser", "GET", "/subjects", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", 200, ContentType},
		{"json preferred", "GET", "/subjects", "application/json, " + ContentType + ";q=0.5", "", 200, "application/json"},
		{"confluent python client", "GET", "/subjects", ContentType + ", application/vnd.schemaregistry+json, application/json", "", 200, ContentType},
		{"html", "GET", "/subjects", "text/html", "", 406, ""},
		{"q zero", "GET", "/subjects", "application/json;q=0", "", 406, ""},
		{"text body", "POST", "/subjects/s/versions", "", "text/plain", 415, ""},
		{"xml body", "POST", "/subjects/s/versions", "", "application/xml", 415, ""},
		{"json body", "POST", "/subjects/s/versions", "", "application/json", 200, ContentType},
		{"v1 body", "POST", "/subjects/s/versions", "", ContentType + "; charset=utf-8", 200, ContentType},
		{"octet body", "POST", "/subjects/s/versions", "", "application/octet-stream", 200, ContentType},
		{"no type body", "POST", "/subjects/s/versions", "", "", 200, ContentType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Del("Content-Type")
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status >= 400 {
				var eb errorBody
				if err := json.Unmarshal(b, &eb); err != nil || eb.ErrorCode != tc.status {
					t.Fatalf("error body %s: %+v %v", b, eb, err)
				}
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tc.wantType {
				t.Fatalf("Content-Type %q, want %q", got, tc.wantType)
			}
		})
	}
}

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestJSONAndProtobufTypes drives JSON Schema and Protobuf registrations
// through franz-go: evolution under the default BACKWARD level, 409 and
// 42201, references across subjects, and the type in every answer.
func TestJSONAndProtobufTypes(t *testing.T) {
	ts, _ := newServer(t)
	ctx := testCtx(t)
	cl := srClient(t, ts.URL)
	cases := []struct {
		typ                  sr.SchemaType
		ref                  string
		refName              string
		v1, v2, bad, invalid string
		sameInAnotherLayout  string
	}{
		{
			typ:     sr.TypeJSON,
			ref:     `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`,
			refName: "address.json",
			v1:      `{"type":"object","properties":{"id":{"type":"integer"},"ship":{"$ref":"address.json"}},"additionalProperties":false}`,
			v2:      `{"type":"object","properties":{"id":{"type":"integer"},"ship":{"$ref":"address.json"},"note":{"type":"string"}},"additionalProperties":false}`,
			bad:     `{"type":"object","properties":{"id":{"type":"string"},"ship":{"$ref":"address.json"}},"additionalProperties":false}`,
			invalid: `{"type":"object","properties":{"id":{"type":17}}}`,
			sameInAnotherLayout: `{ "additionalProperties": false, "type": "object",
			  "properties": {"ship": {"$ref": "address.json"}, "id": {"type": "integer"}} }`,
		},
		{
			typ:                 sr.TypeProtobuf,
			ref:                 "syntax = \"proto3\";\npackage acme;\nmessage Address { string city = 1; }\n",
			refName:             "acme/address.proto",
			v1:                  "syntax = \"proto3\";\npackage acme;\nimport \"acme/address.proto\";\nmessage Order { int64 id = 1; Address ship = 2; }\n",
			v2:                  "syntax = \"proto3\";\npackage acme;\nimport \"acme/address.proto\";\nmessage Order { int64 id = 1; Address ship = 2; string note = 3; }\n",
			bad:                 "syntax = \"proto3\";\npackage acme;\nimport \"acme/address.proto\";\nmessage Order { string id = 1; Address ship = 2; }\n",
			invalid:             "syntax = \"proto3\";\nmessage Order { int64 id = 1; Unknown u = 2; }\n",
			sameInAnotherLayout: "// orders\nsyntax = \"proto3\";\n\npackage acme;\nimport \"acme/address.proto\";\n\nmessage Order {\n  int64 id = 1; // key\n  Address ship = 2;\n}\n",
		},
	}
	for _, tc := range cases {
		t.Run(tc.typ.String(), func(t *testing.T) {
			refSubj, subj := "addr-"+tc.typ.String(), "orders-"+tc.typ.String()
			if _, err := cl.CreateSchema(ctx, refSubj, sr.Schema{Schema: tc.ref, Type: tc.typ}); err != nil {
				t.Fatal(err)
			}
			refs := []sr.SchemaReference{{Name: tc.refName, Subject: refSubj, Version: 1}}
			_, err := cl.RegisterSchema(ctx, subj, sr.Schema{Schema: tc.v1, Type: tc.typ}, -1, -1)
			wantSRCode(t, err, 42201) // the reference is missing
			_, err = cl.RegisterSchema(ctx, subj, sr.Schema{Schema: tc.invalid, Type: tc.typ}, -1, -1)
			wantSRCode(t, err, 42201)
			s1, err := cl.CreateSchema(ctx, subj, sr.Schema{Schema: tc.v1, Type: tc.typ, References: refs})
			if err != nil {
				t.Fatal(err)
			}
			if s1.Type != tc.typ || s1.Schema.Schema != tc.v1 || !reflect.DeepEqual(s1.References, refs) {
				t.Fatalf("registered %+v", s1)
			}
			byID, err := cl.SchemaByID(ctx, s1.ID)
			if err != nil || byID.Type != tc.typ || byID.Schema != tc.v1 {
				t.Fatalf("by id %+v %v", byID, err)
			}
			if got, err := cl.LookupSchema(ctx, subj, sr.Schema{Schema: tc.sameInAnotherLayout, Type: tc.typ, References: refs}); err != nil || got.ID != s1.ID {
				t.Fatalf("lookup in another layout: %+v %v", got, err)
			}
			_, err = cl.RegisterSchema(ctx, subj, sr.Schema{Schema: tc.bad, Type: tc.typ, References: refs}, -1, -1)
			wantSRCode(t, err, 409)
			res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), subj, -1, sr.Schema{Schema: tc.bad, Type: tc.typ, References: refs})
			if err != nil || res.Is || len(res.Messages) == 0 {
				t.Fatalf("check bad: %+v %v", res, err)
			}
			s2, err := cl.CreateSchema(ctx, subj, sr.Schema{Schema: tc.v2, Type: tc.typ, References: refs})
			if err != nil || s2.Version != 2 {
				t.Fatalf("v2: %+v %v", s2, err)
			}
			// Another type in the same subject is incompatible.
			_, err = cl.RegisterSchema(ctx, subj, sr.Schema{Schema: v1}, -1, -1)
			wantSRCode(t, err, 409)
			users, err := cl.SchemaReferences(ctx, refSubj, 1)
			if err != nil || len(users) != 2 {
				t.Fatalf("referencedby: %+v %v", users, err)
			}
		})
	}
}
