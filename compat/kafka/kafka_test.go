package kafka

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/plugin"
)

func TestDialerMapping(t *testing.T) {
	d, err := NewDialer(
		WithBrokerMap(map[string]string{"kafka-1:9092": "raptor://10.0.0.7:7000"}),
		WithGateways("kafka-2:9092", "raptor://gw-a:9092", "raptor://gw-b:9092"),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for host, want := range map[string][]string{
		"kafka-0:9092": {"raptor://kafka-0:9092"},
		"kafka-1:9092": {"raptor://10.0.0.7:7000"},
		"kafka-2:9092": {"raptor://gw-a:9092", "raptor://gw-b:9092"},
	} {
		if got := d.Endpoint(host); !slices.Equal(got, want) {
			t.Errorf("Endpoint(%s) = %v, want %v", host, got, want)
		}
	}
	if d.Failover("kafka-2:9092") == nil || d.Failover("kafka-1:9092") != nil {
		t.Error("failover dialer only for gateway lists")
	}
	_, err = NewDialer(WithBrokerMap(map[string]string{"k:1": "quic://h:1"}))
	var se *plugin.SchemeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "raptor://") {
		t.Fatalf("bad scheme error: %v", err)
	}
	if _, err := NewDialer(WithScheme("udp")); err == nil {
		t.Fatal("scheme udp accepted")
	}
}

// TestBrokerServesTCPAndRaptor produces over TCP and consumes over Raptor
// from one embedded broker port.
func TestBrokerServesTCPAndRaptor(t *testing.T) {
	b, err := NewBroker(BrokerConfig{Topics: []string{"t"}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := 0; i < 10; i++ {
		if err := prod.ProduceSync(ctx, kgo.StringRecord("r")).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), d.Opt(), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	for got < 10 {
		f := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 10: %v", got, err)
		}
		got += len(f.Records())
	}
	if st := d.Transport(); st == nil {
		t.Fatal("no transport")
	}
	b.Close()
	b.Close()
}

// TestBrokerPersistent: records produced before a restart are there after
// it when the broker has a DataDir.
func TestBrokerPersistent(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := NewBroker(BrokerConfig{DataDir: dir, Topics: []string{"kept"}, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("kept"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx, kgo.StringRecord("durable")).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	b.Close()

	b, err = NewBroker(BrokerConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), d.Opt(), kgo.ConsumeTopics("kept"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	for got < 5 && ctx.Err() == nil {
		got += len(cons.PollFetches(ctx).Records())
	}
	if got != 5 {
		t.Fatalf("after restart: %d of 5 records", got)
	}
}

// TestBrokerClusterAdvertise: N brokers each listen on their own port and
// advertise host:port+i when Advertise has a port.
func TestBrokerClusterAdvertise(t *testing.T) {
	b, err := NewBroker(BrokerConfig{Brokers: 3, Advertise: "broker.example:30000", Topics: []string{"six:6", "dflt"}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := []string{"broker.example:30000", "broker.example:30001", "broker.example:30002"}
	if got := b.Addrs(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("advertised %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for _, ml := range b.Listeners() {
		tcp, udp := ml.Listeners()[0].Addr().String(), ml.Listeners()[1].Addr().String()
		_, tp, _ := net.SplitHostPort(tcp)
		_, up, _ := net.SplitHostPort(udp)
		if tp != up || seen[tp] {
			t.Fatalf("broker listeners tcp %s, raptor %s (seen %v): want one distinct port each", tcp, udp, seen)
		}
		seen[tp] = true
	}
	for _, c := range []struct {
		topic string
		parts int
	}{{"six", 6}, {"dflt", 2}} {
		if got := int(b.Cluster().LeaderFor(c.topic, int32(c.parts-1))); got < 0 || b.Cluster().LeaderFor(c.topic, int32(c.parts)) != -1 {
			t.Fatalf("topic %s: want %d partitions (leader of the last %d)", c.topic, c.parts, got)
		}
	}
}

func TestBrokerConfigErrors(t *testing.T) {
	for _, cfg := range []BrokerConfig{
		{Topics: []string{"t:0"}},
		{Topics: []string{":3"}},
		{Advertise: "h:port"},
		{Addr: "127.0.0.1:65535", Brokers: 2},
	} {
		if b, err := NewBroker(cfg); err == nil {
			b.Close()
			t.Errorf("%+v accepted", cfg)
		}
	}
}
