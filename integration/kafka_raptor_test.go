package integration

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/plugin"
)

// TestKafkaOverRaptor: franz-go producer and consumer group over Raptor to
// the embedded broker, 100,000 records over 6 partitions.
func TestKafkaOverRaptor(t *testing.T) {
	b, err := kafka.NewBroker(kafka.BrokerConfig{Topics: []string{"raptor"}, Partitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := kafka.NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	n := kxRecords
	kxWorkload{Seed: b.Addr(), Topic: "raptor", Partitions: 6, N: n, Opts: []kgo.Opt{d.Opt()}}.run(t, ctx).check(t, n)
	st := b.Listeners()[0].Listeners()[1].(interface{ SessionCount() int })
	if st.SessionCount() == 0 {
		t.Fatal("no Raptor session on the broker: the clients did not use Raptor")
	}
}

// TestKafkaOverRaptorWithLoss: the same with 5% of datagrams dropped in each
// direction, in process.
func TestKafkaOverRaptorWithLoss(t *testing.T) {
	open, stats := kxLossy(t, 5, time.Now().UnixNano())
	b, err := kafka.NewBroker(kafka.BrokerConfig{Topics: []string{"lossy"}, Partitions: 6, TransportOptions: []plugin.Option{plugin.WithPacketConn(open)}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := kafka.NewDialer(kafka.WithTransportOptions(plugin.WithPacketConn(open)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
	n := kxRecords
	kxWorkload{Seed: b.Addr(), Topic: "lossy", Partitions: 6, N: n, Opts: []kgo.Opt{d.Opt()}}.run(t, ctx).check(t, n)
	sent, dropped := stats()
	if dropped == 0 {
		t.Fatal("no datagram was dropped")
	}
	t.Logf("datagrams: %d sent, %d dropped (%.1f%%)", sent, dropped, 100*float64(dropped)/float64(sent))
}

// TestKafkaAdminOverRaptor: kadm create topic, list topics and describe
// groups over Raptor.
func TestKafkaAdminOverRaptor(t *testing.T) {
	b, err := kafka.NewBroker(kafka.BrokerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	d, err := kafka.NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), d.Opt())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "admin-topic"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if td, ok := topics["admin-topic"]; !ok || len(td.Partitions) != 3 {
		t.Fatalf("list topics: %v", topics.Names())
	}
	// A consumer group over Raptor, then describe it.
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), d.Opt(), kgo.ConsumerGroup("admin-group"), kgo.ConsumeTopics("admin-topic"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "admin-topic", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for len(cons.PollFetches(ctx).Records()) == 0 && ctx.Err() == nil {
	}
	groups, err := adm.DescribeGroups(ctx, "admin-group")
	if err != nil {
		t.Fatalf("describe groups: %v", err)
	}
	g := groups["admin-group"]
	if g.Err != nil || g.State != "Stable" || len(g.Members) != 1 {
		t.Fatalf("describe groups: %+v", g)
	}
	t.Logf("group %s: state %s, %d member(s), protocol %s", g.Group, g.State, len(g.Members), g.Protocol)
}
