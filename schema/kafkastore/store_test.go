package kafkastore

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/schema"
	"github.com/raptormq/raptor/schema/httpapi"
	"github.com/raptormq/raptor/schema/registry"
)

const (
	v1 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}`
	v2 = `{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"b","type":"string","default":"x"}]}`
)

func open(t *testing.T, ctx context.Context, brokers []string, primary bool) *registry.Registry {
	t.Helper()
	st, err := New(Config{Brokers: brokers, Primary: primary})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, registry.Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// TestSharedTopic: a primary and a secondary on one _schemas topic; the
// secondary forwards writes over HTTP and reads its own copy; a restarted
// instance replays the topic.
func TestSharedTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close) // after the registries' cleanups: they close first
	brokers := cluster.ListenAddrs()

	primary := open(t, ctx, brokers, true)
	secondary := open(t, ctx, brokers, false)

	ph, err := httpapi.New(httpapi.Config{Registry: primary})
	if err != nil {
		t.Fatal(err)
	}
	psrv := httptest.NewServer(ph)
	defer psrv.Close()
	sh, err := httpapi.New(httpapi.Config{Registry: secondary, Primary: psrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ssrv := httptest.NewServer(sh)
	defer ssrv.Close()

	// Both URLs in one client, secondary first: writes are forwarded.
	cl, err := sr.NewClient(sr.URLs(ssrv.URL))
	if err != nil {
		t.Fatal(err)
	}
	id1, err := cl.RegisterSchema(ctx, "s", sr.Schema{Schema: v1}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	// Read-your-writes on the secondary, right after the forwarded write.
	got, err := cl.SchemaByVersion(ctx, "s", -1)
	if err != nil || got.ID != id1 {
		t.Fatalf("secondary read after write: %+v %v", got, err)
	}
	if err := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull}, "s")[0].Err; err != nil {
		t.Fatal(err)
	}
	id2, err := primary.Register(ctx, "s", "", v2)
	if err != nil {
		t.Fatal(err)
	}
	if err := secondary.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if sv, err := secondary.Version("s", 2, false); err != nil || sv.ID != id2.ID {
		t.Fatalf("secondary sees v2: %+v %v", sv, err)
	}
	if l, ok := secondary.Level("s"); l != schema.Full || !ok {
		t.Fatalf("secondary level %s", l)
	}
	// The secondary refuses direct writes.
	_, err = secondary.Register(ctx, "other", "", v1)
	if !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("direct write on secondary: %v", err)
	}
	// Soft delete through the secondary, then a fresh instance replays it all.
	if err := cl.DeleteSchema(ctx, "s", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	fresh := open(t, ctx, brokers, false)
	if vs, err := fresh.Versions("s", false); err != nil || len(vs) != 1 || vs[0] != 2 {
		t.Fatalf("fresh instance versions %v %v", vs, err)
	}
	if vs, _ := fresh.Versions("s", true); len(vs) != 2 {
		t.Fatalf("fresh instance all versions %v", vs)
	}
	if text, err := fresh.SchemaByID(id1); err != nil || text == "" {
		t.Fatalf("fresh instance id %d: %v", id1, err)
	}
}

// TestModeDurable: modes written through one instance are read back by a
// fresh instance replaying the topic.
func TestModeDurable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	reg := open(t, ctx, brokers, true)
	if _, err := reg.Register(ctx, "s", "", v1); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetMode(ctx, "", registry.ReadOnly, false); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetMode(ctx, "s", registry.Import, true); err != nil {
		t.Fatal(err)
	}
	reg.Close()
	fresh := open(t, ctx, brokers, true)
	if m, ok := fresh.ModeOf(""); m != registry.ReadOnly || !ok {
		t.Fatalf("global mode after restart: %s", m)
	}
	if m, ok := fresh.ModeOf("s"); m != registry.Import || !ok {
		t.Fatalf("subject mode after restart: %s %v", m, ok)
	}
	if sv, err := fresh.RegisterSchema(ctx, "s", registry.Request{Text: v2, ID: 40, Version: 9}); err != nil || sv.ID != 40 || sv.Version != 9 {
		t.Fatalf("import after restart: %+v %v", sv, err)
	}
	if _, err := fresh.DeleteMode(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	fresh.Close()
	again := open(t, ctx, brokers, false)
	if m, ok := again.ModeOf("s"); m != registry.ReadOnly || ok {
		t.Fatalf("deleted subject mode after restart: %s %v", m, ok)
	}
}

// TestConfluentTopic: records as Confluent's registry writes them on
// _schemas (NOOP, SCHEMA with magic 1, CONFIG and MODE with a null subject
// for the global entry, DELETE_SUBJECT) are taken over; Raptor's own writes
// use the same keys, so compaction collapses them.
func TestConfluentTopic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(DefaultTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	quoted := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	confluent := []struct{ k, v string }{
		{`{"keytype":"NOOP","magic":0}`, ""},
		{`{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}`, `{"subject":"orders-value","version":1,"id":1,"schema":` + quoted(v1) + `,"references":[],"deleted":false}`},
		{`{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}`, `{"subject":"orders-value","version":2,"id":2,"schema":` + quoted(v2) + `,"deleted":false}`},
		{`{"keytype":"SCHEMA","subject":"old-value","version":1,"magic":1}`, `{"subject":"old-value","version":1,"id":1,"schema":` + quoted(v1) + `,"deleted":false}`},
		{`{"keytype":"CONFIG","subject":null,"magic":0}`, `{"compatibilityLevel":"FULL"}`},
		{`{"keytype":"CONFIG","subject":"orders-value","magic":0}`, `{"compatibilityLevel":"NONE"}`},
		{`{"keytype":"MODE","subject":null,"magic":0}`, `{"mode":"READWRITE"}`},
		{`{"keytype":"MODE","subject":"orders-value","magic":0}`, `{"mode":"READONLY"}`},
		{`{"keytype":"DELETE_SUBJECT","subject":"old-value","magic":0}`, `{"subject":"old-value","version":1}`},
		{`{"keytype":"NOOP","magic":0}`, ""},
	}
	for _, r := range confluent {
		rec := &kgo.Record{Key: []byte(r.k)}
		if r.v != "" {
			rec.Value = []byte(r.v)
		}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	reg := open(t, ctx, brokers, true)
	if n := reg.MalformedRecords(); n != 0 {
		t.Fatalf("%d Confluent records skipped as malformed", n)
	}
	if vs, err := reg.Versions("orders-value", false); err != nil || len(vs) != 2 {
		t.Fatalf("versions %v %v", vs, err)
	}
	if got, err := reg.SchemaByID(2); err != nil || got != v2 {
		t.Fatalf("id 2: %q %v", got, err)
	}
	if got := reg.Subjects(false); len(got) != 1 || got[0] != "orders-value" {
		t.Fatalf("subjects %v (old-value is soft-deleted)", got)
	}
	if l, _ := reg.Level(""); l != schema.Full {
		t.Fatalf("global level %s", l)
	}
	if m, _ := reg.ModeOf("orders-value"); m != registry.ReadOnly {
		t.Fatalf("subject mode %s", m)
	}
	// Raptor's own writes go on as Confluent's would: the next ID is 3, and
	// the key bytes match Confluent's.
	if _, err := reg.DeleteMode(ctx, "orders-value"); err != nil {
		t.Fatal(err)
	}
	// A schema already there is found, not registered again.
	if sv, err := reg.Register(ctx, "orders-value", "", v1); err != nil || sv.ID != 1 || sv.Version != 1 {
		t.Fatalf("re-register a Confluent-written schema: %+v %v", sv, err)
	}
	sv, err := reg.Register(ctx, "orders-value", "", `{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"c","type":"long","default":0}]}`)
	if err != nil || sv.ID != 3 || sv.Version != 3 {
		t.Fatalf("register after takeover: %+v %v", sv, err)
	}
	keys := map[string]bool{}
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(DefaultTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for n := 0; n < len(confluent)+2; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read back %d records: %v", n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if n >= len(confluent) {
				keys[string(r.Key)] = r.Value == nil
			}
			n++
		})
	}
	want := map[string]bool{
		`{"keytype":"MODE","subject":"orders-value","magic":0}`:               true,
		`{"keytype":"SCHEMA","subject":"orders-value","version":3,"magic":1}`: false,
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("Raptor wrote keys %v, want %v", keys, want)
	}
}

// TestForeignTopicRefused: a topic holding only records that are not
// registry records (an application topic given by mistake) is refused with
// a clear error; one foreign record among registry records is skipped.
func TestForeignTopicRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "mixed"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := cluster.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range []*kgo.Record{
		{Topic: "orders", Key: []byte("order-1"), Value: []byte("{}")},
		{Topic: "orders", Value: []byte("no key")},
		{Topic: "mixed", Key: []byte(`{"keytype":"NOOP","magic":0}`)},
		{Topic: "mixed", Key: []byte("stray")},
	} {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := New(Config{Brokers: brokers, Topic: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = registry.Open(ctx, registry.Config{Store: st})
	st.Close()
	var fe *ForeignTopicError
	if !errors.As(err, &fe) || fe.Topic != "orders" || fe.Records != 2 || !strings.Contains(err.Error(), "offset 0") {
		t.Fatalf("foreign topic: %v", err)
	}
	st, err = New(Config{Brokers: brokers, Topic: "mixed", Primary: true})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, registry.Config{Store: st})
	if err != nil {
		t.Fatalf("mixed topic: %v", err)
	}
	defer reg.Close()
	if _, err := reg.Register(ctx, "s", "", v1); err != nil {
		t.Fatal(err)
	}
}
