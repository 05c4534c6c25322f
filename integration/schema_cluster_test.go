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
	"github.com/raptormq/raptor/schema/kafkastore"
	"github.com/raptormq/raptor/schema/registry"
	"github.com/raptormq/raptor/schema/serde"
)

// schemaKafkaRegistry starts one registry instance on the _schemas topic of
// brokers and serves it on loopback.
func schemaKafkaRegistry(t *testing.T, ctx context.Context, brokers []string, primaryURL string) (string, *registry.Registry) {
	t.Helper()
	st, err := kafkastore.New(kafkastore.Config{Brokers: brokers, Primary: primaryURL == ""})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, registry.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.New(httpapi.Config{Registry: reg, Primary: primaryURL})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() { ts.Close(); reg.Close() })
	return ts.URL, reg
}

// TestSchemaRegistryClusterOnKafka: the registry itself lives on the Kafka
// cluster that carries the data. The producer talks to a secondary instance
// (its registration is forwarded to the primary), the consumer to the
// primary, and a third instance started afterwards serves the same IDs.
func TestSchemaRegistryClusterOnKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "users"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close) // runs after the registries' cleanups
	brokers := cluster.ListenAddrs()

	primaryURL, _ := schemaKafkaRegistry(t, ctx, brokers, "")
	secondaryURL, _ := schemaKafkaRegistry(t, ctx, brokers, primaryURL)

	prodCl, err := sr.NewClient(sr.URLs(secondaryURL))
	if err != nil {
		t.Fatal(err)
	}
	consCl, err := sr.NewClient(sr.URLs(primaryURL))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := serde.New(prodCl).Register(ctx, "users-value", schemaUserV1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := serde.New(consCl).Register(ctx, "users-value", schemaUserV2); err != nil {
		t.Fatal(err)
	}

	const n = 1000
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("users"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range n {
		payload, err := enc.Encode(schemaV1Value(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: payload}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	dec := serde.New(consCl).NewDecoder(schema.MustParse(schemaUserV2))
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("users"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("after %d records: %v", got, ctx.Err())
		}
		for it := fs.RecordIter(); !it.Done(); got++ {
			v, err := dec.Decode(ctx, it.Next().Value)
			if err != nil {
				t.Fatalf("record %d: %v", got, err)
			}
			if want := schemaV2Expected(got); !reflect.DeepEqual(v, want) {
				t.Fatalf("record %d:\ngot  %#v\nwant %#v", got, v, want)
			}
		}
	}

	// A late instance replays the topic and serves the same schemas by ID.
	lateURL, _ := schemaKafkaRegistry(t, ctx, brokers, primaryURL)
	lateCl, err := sr.NewClient(sr.URLs(lateURL))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := lateCl.SubjectVersions(ctx, "users-value")
	if err != nil || fmt.Sprint(vs) != "[1 2]" {
		t.Fatalf("late instance versions %v %v", vs, err)
	}
	s, err := lateCl.SchemaByID(ctx, int(enc.ID()))
	if err != nil || s.Schema != schemaUserV1 { // as registered, byte for byte
		t.Fatalf("late instance schema %d: %v", enc.ID(), err)
	}
}
