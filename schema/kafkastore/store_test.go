package kafkastore

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
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
