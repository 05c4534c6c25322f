package integration

import (
	"context"
	"fmt"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/schema"
	"github.com/raptormq/raptor/schema/httpapi"
	"github.com/raptormq/raptor/schema/registry"
	"github.com/raptormq/raptor/schema/serde"
)

const schemaEvoRecords = 10_000

// schemaUserV1 is the first version of the record.
const schemaUserV1 = `{"type":"record","name":"User","namespace":"raptor.it","fields":[
 {"name":"id","type":"int"},
 {"name":"name","type":"string"},
 {"name":"score","type":"float"},
 {"name":"email","type":["null","string"],"default":null},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"],"default":"A"}},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"int"}},
 {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
 {"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}},
 {"name":"legacy","type":"string","default":"old"}
]}`

// schemaUserV2 evolves v1: int->long, float->double, string->bytes and int->long
// inside a map (promotions), email renamed mail (alias), legacy removed,
// age and nick added with defaults, enum symbol D added, and a field added
// with a default inside the nested record.
const schemaUserV2 = `{"type":"record","name":"User","namespace":"raptor.it","fields":[
 {"name":"id","type":"long"},
 {"name":"name","type":"bytes"},
 {"name":"score","type":"double"},
 {"name":"mail","aliases":["email"],"type":["null","string"],"default":null},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C","D"],"default":"A"}},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"long"}},
 {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
 {"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"country","type":"string","default":"FR"}]}},
 {"name":"age","type":"int","default":-1},
 {"name":"nick","type":["null","string"],"default":null}
]}`

// schemaUserV2Full is v2 without the numeric promotions (Avro promotions only
// widen, so a v1 reader cannot take a long): it is FULL-compatible with v1
// and is what the v2 producer of the reverse direction writes. string<->bytes
// is kept, being allowed both ways.
const schemaUserV2Full = `{"type":"record","name":"User","namespace":"raptor.it","fields":[
 {"name":"id","type":"int"},
 {"name":"name","type":"bytes"},
 {"name":"score","type":"float"},
 {"name":"mail","aliases":["email"],"type":["null","string"],"default":null},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C","D"],"default":"A"}},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"attrs","type":{"type":"map","values":"int"}},
 {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
 {"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"},{"name":"country","type":"string","default":"FR"}]}},
 {"name":"age","type":"int","default":-1},
 {"name":"nick","type":["null","string"],"default":null}
]}`

var schemaKinds3, schemaKinds4 = []string{"A", "B", "C"}, []string{"A", "B", "C", "D"}

func schemaHashOf(i int) []byte { return []byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)} }

func schemaEmailOf(i int) any {
	if i%3 == 0 {
		return nil
	}
	return fmt.Sprintf("u%d@example.org", i)
}

func schemaV1Value(i int) map[string]any {
	return map[string]any{
		"id": i, "name": fmt.Sprintf("user-%d", i), "score": float32(i) / 4,
		"email": schemaEmailOf(i), "kind": schemaKinds3[i%3],
		"tags":    []any{fmt.Sprintf("t%d", i%7), "all"},
		"attrs":   map[string]any{"n": i, "neg": -i},
		"hash":    schemaHashOf(i),
		"address": map[string]any{"city": fmt.Sprintf("city-%d", i%50)},
		"legacy":  "written-by-v1",
	}
}

// schemaV2Expected is what a v2 reader must see for schemaV1Value(i), written out by hand.
func schemaV2Expected(i int) map[string]any {
	return map[string]any{
		"id": int64(i), "name": []byte(fmt.Sprintf("user-%d", i)), "score": float64(float32(i) / 4),
		"mail": schemaEmailOf(i), "kind": schemaKinds3[i%3],
		"tags":    []any{fmt.Sprintf("t%d", i%7), "all"},
		"attrs":   map[string]any{"n": int64(i), "neg": int64(-i)},
		"hash":    schemaHashOf(i),
		"address": map[string]any{"city": fmt.Sprintf("city-%d", i%50), "country": "FR"},
		"age":     int32(-1), "nick": nil,
	}
}

func schemaV2FullValue(i int) map[string]any {
	return map[string]any{
		"id": i, "name": []byte(fmt.Sprintf("user-%d", i)), "score": float32(i) / 4,
		"mail": schemaEmailOf(i), "kind": schemaKinds4[i%4],
		"tags":    []any{fmt.Sprintf("t%d", i%7)},
		"attrs":   map[string]any{"n": i},
		"hash":    schemaHashOf(i),
		"address": map[string]any{"city": "Nice", "country": "IT"},
		"age":     i % 90, "nick": "n",
	}
}

// schemaV1Expected is what a v1 reader must see for schemaV2FullValue(i): mail is not
// known under that name (v1 has no alias), so email takes its default; D
// falls back to the enum default A; age, nick and country are skipped; legacy
// takes its default.
func schemaV1Expected(i int) map[string]any {
	kind := schemaKinds4[i%4]
	if kind == "D" {
		kind = "A"
	}
	return map[string]any{
		"id": int32(i), "name": fmt.Sprintf("user-%d", i), "score": float32(i) / 4,
		"email": nil, "kind": kind,
		"tags":    []any{fmt.Sprintf("t%d", i%7)},
		"attrs":   map[string]any{"n": int32(i)},
		"hash":    schemaHashOf(i),
		"address": map[string]any{"city": "Nice"},
		"legacy":  "old",
	}
}

func schemaStartRegistry(t *testing.T) *sr.Client {
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
	cl, err := sr.NewClient(sr.URLs(ts.URL))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestSchemaEvolutionThroughKafka: a franz-go producer on one schema version
// and a consumer on another exchange 10,000 records through an embedded
// kfake broker on 127.0.0.1, in both directions and in both payload formats
// (msgpack, and Avro in Confluent's wire format), every field checked
// against a hand-written expectation.
func TestSchemaEvolutionThroughKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "users-fwd-msgpack", "users-rev-msgpack", "users-fwd-avro", "users-rev-avro"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl := schemaStartRegistry(t)

	// Both writer schemas go through the registry's compatibility check.
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatBackwardTransitive}, "users-fwd-value"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFullTransitive}, "users-rev-value"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	// A FULL subject must refuse the promoting v2 after v1.
	producerSerde := serde.New(cl)
	if _, err := producerSerde.Register(ctx, "users-rev-value", schemaUserV1); err != nil {
		t.Fatal(err)
	}
	if _, err := producerSerde.Register(ctx, "users-rev-value", schemaUserV2); err == nil {
		t.Fatal("FULL_TRANSITIVE accepted int->long (not forward compatible)")
	}

	cases := []struct {
		name, topic, subject   string
		before, writer, reader string
		value                  func(int) map[string]any
		expect                 func(int) map[string]any
	}{
		{"v1 producer, v2 consumer", "users-fwd", "users-fwd-value", schemaUserV1, schemaUserV1, schemaUserV2, schemaV1Value, schemaV2Expected},
		{"v2 producer, v1 consumer", "users-rev", "users-rev-value", schemaUserV1, schemaUserV2Full, schemaUserV1, schemaV2FullValue, schemaV1Expected},
	}
	for _, format := range schema.Formats {
		producerSerde := serde.New(cl, serde.PayloadFormat(format))
		for _, tc := range cases {
			tc.topic += "-" + format.String()
			t.Run(format.String()+"/"+tc.name, func(t *testing.T) {
				if _, err := producerSerde.Register(ctx, tc.subject, tc.before); err != nil {
					t.Fatal(err)
				}
				enc, err := producerSerde.Register(ctx, tc.subject, tc.writer)
				if err != nil {
					t.Fatal(err)
				}
				if tc.name == "v1 producer, v2 consumer" {
					// The reader version is registered too, as a consumer team would.
					if _, err := producerSerde.Register(ctx, tc.subject, tc.reader); err != nil {
						t.Fatal(err)
					}
				}

				prod, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic(tc.topic))
				if err != nil {
					t.Fatal(err)
				}
				defer prod.Close()
				start := time.Now()
				errc := make(chan error, 1)
				for i := range schemaEvoRecords {
					payload, err := enc.Encode(tc.value(i))
					if err != nil {
						t.Fatalf("encode %d: %v", i, err)
					}
					if payload[0] != byte(format) {
						t.Fatalf("record %d framed as 0x%02x, want %s", i, payload[0], format)
					}
					prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: payload}, func(_ *kgo.Record, err error) {
						if err != nil {
							select {
							case errc <- err:
							default:
							}
						}
					})
				}
				if err := prod.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				select {
				case err := <-errc:
					t.Fatalf("produce: %v", err)
				default:
				}
				produced := time.Since(start)

				// The consumer is a separate application with its own cache.
				dec := serde.New(cl).NewDecoder(schema.MustParse(tc.reader))
				cons, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(tc.topic),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				if err != nil {
					t.Fatal(err)
				}
				defer cons.Close()
				got := 0
				start = time.Now()
				for got < schemaEvoRecords {
					fs := cons.PollFetches(ctx)
					if err := ctx.Err(); err != nil {
						t.Fatalf("after %d records: %v", got, err)
					}
					fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
					for it := fs.RecordIter(); !it.Done(); {
						r := it.Next()
						v, err := dec.Decode(ctx, r.Value)
						if err != nil {
							t.Fatalf("record %d (key %s): %v", got, r.Key, err)
						}
						if want := tc.expect(got); !reflect.DeepEqual(v, want) {
							t.Fatalf("record %d:\ngot  %#v\nwant %#v", got, v, want)
						}
						if string(r.Key) != fmt.Sprint(got) {
							t.Fatalf("record %d has key %s", got, r.Key)
						}
						got++
					}
				}
				t.Logf("%d records: produced in %v, consumed and resolved in %v", got, produced, time.Since(start))
			})
		}
	}
}
