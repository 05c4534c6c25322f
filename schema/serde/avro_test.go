package serde

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	hambareg "github.com/hamba/avro/v2/registry"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/schema"
	"github.com/raptormq/raptor/schema/httpapi"
	"github.com/raptormq/raptor/schema/registry"
)

const userAvro = `{"type":"record","name":"User","namespace":"acme","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"string"},
 {"name":"email","type":["null","string"],"default":null},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["ADMIN","GUEST"]}},
 {"name":"tags","type":{"type":"array","items":"string"}}
]}`

// hambaUser is how a Go program using hamba/avro (as Confluent-compatible
// producers and consumers do) holds a User.
type hambaUser struct {
	ID    int64    `avro:"id"`
	Name  string   `avro:"name"`
	Email *string  `avro:"email"`
	Kind  string   `avro:"kind"`
	Tags  []string `avro:"tags"`
}

func newRegistry(t *testing.T) string {
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
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); reg.Close() })
	return ts.URL
}

// TestAvroInteropWithHamba: Raptor's Avro payloads decode with hamba/avro's
// Confluent-framed reader, hamba's Confluent-framed payloads decode with
// Raptor's decoder, and a payload in the wrong format fails clearly on
// either side.
func TestAvroInteropWithHamba(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := newRegistry(t)
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	hcl, err := hambareg.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	hdec := hambareg.NewDecoder(hcl)
	sd := New(cl, SubjectFormat("users-value", schema.FormatAvro))

	mail := "ada@example.org"
	value := map[string]any{"id": 7, "name": "ada", "email": mail, "kind": "ADMIN", "tags": []string{"a", "b"}}
	want := hambaUser{ID: 7, Name: "ada", Email: &mail, Kind: "ADMIN", Tags: []string{"a", "b"}}

	// Raptor writes, hamba reads.
	enc, err := sd.Register(ctx, "users-value", userAvro)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Format() != schema.FormatAvro {
		t.Fatalf("subject format %s", enc.Format())
	}
	payload, err := enc.Encode(value)
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] != 0 || binary.BigEndian.Uint32(payload[1:5]) != enc.ID() {
		t.Fatalf("not Confluent framing: %x", payload)
	}
	var got hambaUser
	if err := hdec.Decode(ctx, payload, &got); err != nil {
		t.Fatalf("hamba cannot decode Raptor's payload %x: %v", payload, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hamba decoded %+v, want %+v", got, want)
	}

	// hamba writes (Confluent framing, its own registry client), Raptor reads.
	id, hs, err := hcl.IsRegistered(ctx, "users-value", userAvro)
	if err != nil || uint32(id) != enc.ID() {
		t.Fatalf("hamba lookup: %d %v", id, err)
	}
	body, err := avro.Marshal(hs, want)
	if err != nil {
		t.Fatal(err)
	}
	hpayload := append(schema.AppendHeader(nil, uint32(id)), body...)
	dec := sd.NewDecoder(schema.MustParse(userAvro), AcceptFormats(schema.FormatAvro))
	v, err := dec.Decode(ctx, hpayload)
	if err != nil {
		t.Fatalf("Raptor cannot decode hamba's payload %x: %v", hpayload, err)
	}
	wantV := map[string]any{"id": int64(7), "name": "ada", "email": mail, "kind": "ADMIN", "tags": []any{"a", "b"}}
	if !reflect.DeepEqual(v, wantV) {
		t.Fatalf("Raptor decoded %#v, want %#v", v, wantV)
	}

	// A msgpack record: hamba's reader and Raptor's Avro-only decoder refuse
	// it, naming the magic byte; Raptor's default decoder reads it.
	mpEnc, err := New(cl).Register(ctx, "users-value", userAvro)
	if err != nil {
		t.Fatal(err)
	}
	mp, err := mpEnc.Encode(value)
	if err != nil {
		t.Fatal(err)
	}
	if err := hdec.Decode(ctx, mp, &got); err == nil || !strings.Contains(err.Error(), "magic byte: 4d") {
		t.Fatalf("hamba given msgpack: %v", err)
	}
	var fe *schema.FormatError
	if _, err := dec.Decode(ctx, mp); !errors.As(err, &fe) || fe.Got != schema.FormatMsgpack || !strings.Contains(err.Error(), "msgpack-framed") {
		t.Fatalf("Avro-only decoder given msgpack: %v", err)
	}
	if v, err := sd.NewDecoder(schema.MustParse(userAvro)).Decode(ctx, mp); err != nil || !reflect.DeepEqual(v, wantV) {
		t.Fatalf("default decoder on msgpack: %#v %v", v, err)
	}
	// The reverse: an Avro record given to a msgpack-only decoder.
	mpDec := sd.NewDecoder(schema.MustParse(userAvro), AcceptFormats(schema.FormatMsgpack))
	if _, err := mpDec.Decode(ctx, hpayload); !errors.As(err, &fe) || fe.Got != schema.FormatAvro || !strings.Contains(err.Error(), "avro-framed") {
		t.Fatalf("msgpack-only decoder given Avro: %v", err)
	}
	// A msgpack body behind Confluent's magic byte (what Raptor wrote before
	// the formats were told apart) fails as Avro, with the field and offset.
	legacy := append(schema.AppendHeader(nil, enc.ID()), mp[5:]...)
	var de *schema.DecodeError
	if _, err := dec.Decode(ctx, legacy); !errors.As(err, &de) {
		t.Fatalf("msgpack body with magic 0: %v", err)
	}
}

// TestAvroReferencesThroughSerde: a schema using a type registered in
// another subject encodes and decodes in both formats; a fresh Serde fetches
// the writer schema and its references.
func TestAvroReferencesThroughSerde(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := newRegistry(t)
	cl, err := sr.NewClient(sr.URLs(url))
	if err != nil {
		t.Fatal(err)
	}
	const address = `{"type":"record","name":"Address","namespace":"acme","fields":[{"name":"city","type":"string"}]}`
	const order = `{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"id","type":"long"},{"name":"ship","type":"acme.Address"}]}`
	if _, err := cl.CreateSchema(ctx, "address", sr.Schema{Schema: address}); err != nil {
		t.Fatal(err)
	}
	ref := sr.SchemaReference{Name: "acme.Address", Subject: "address", Version: 1}
	for _, f := range schema.Formats {
		t.Run(f.String(), func(t *testing.T) {
			sd := New(cl, PayloadFormat(f))
			enc, err := sd.Register(ctx, "orders-value", order, ref)
			if err != nil {
				t.Fatal(err)
			}
			value := map[string]any{"id": int64(3), "ship": map[string]any{"city": "Lyon"}}
			payload, err := enc.Encode(value)
			if err != nil {
				t.Fatal(err)
			}
			// A fresh Serde fetches the writer schema and its reference by ID.
			reader, err := schema.ParseWithReferences(order, []string{address})
			if err != nil {
				t.Fatal(err)
			}
			got, err := New(cl).NewDecoder(reader).Decode(ctx, payload)
			if err != nil || !reflect.DeepEqual(got, value) {
				t.Fatalf("decoded %#v %v", got, err)
			}
		})
	}
}
