package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/compat/rafka"
	"github.com/raptormq/raptor/compat/rafka/rafkapb"
	"github.com/raptormq/raptor/plugin"
)

// rafkaServe starts what `raptor rafka serve` runs: Rafka's BrokerService on
// one port for TCP and Raptor, over an embedded broker whose topics the
// bridge creates with partitions partitions. Cleanup closes it.
func rafkaServe(t testing.TB, partitions int) *rafka.Server {
	t.Helper()
	s, err := rafka.NewServer(rafka.ServerConfig{
		Addr:     "127.0.0.1:0",
		Embedded: kafka.BrokerConfig{Partitions: partitions, AutoCreateTopics: true},
		Bridge:   rafka.Config{CreateTopics: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(5 * time.Second); err != nil {
			t.Errorf("rafka server close: %v", err)
		}
	})
	return s
}

// rafkaDial returns a client generated from rafka.proto that reaches addr
// over transport ("tcp" or "raptor"). Cleanup closes it.
func rafkaDial(t testing.TB, addr, transport string) rafkapb.BrokerServiceClient {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	switch transport {
	case "tcp":
	case "raptor":
		tr := plugin.New()
		t.Cleanup(func() { tr.Close() })
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return tr.Dial(ctx, "raptor://"+a)
		}))
	default:
		t.Fatalf("rafkaDial: transport %q, want tcp or raptor", transport)
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return rafkapb.NewBrokerServiceClient(cc)
}

// rafkaStream opens a Consume stream and waits for its header: from then
// on, every message published is on it.
func rafkaStream(t *testing.T, ctx context.Context, c rafkapb.BrokerServiceClient, id, topic string) grpc.ServerStreamingClient[rafkapb.ConsumeResponse] {
	t.Helper()
	st, err := c.Consume(ctx, &rafkapb.ConsumeRequest{Id: id, Topic: topic})
	if err != nil {
		t.Fatalf("Consume(%q, %q): %v", id, topic, err)
	}
	md, err := st.Header()
	if err != nil {
		t.Fatalf("Consume(%q, %q) header: %v", id, topic, err)
	}
	if len(md.Get(rafka.HeaderStart)) != 1 {
		_, err := st.Recv()
		t.Fatalf("Consume(%q, %q) header %v lacks %s; the stream ended with %v", id, topic, md, rafka.HeaderStart, err)
	}
	return st
}

// rafkaFailed checks a response answered with success=false whose trailer
// names code.
func rafkaFailed(t *testing.T, what string, success bool, msg string, err error, tr metadata.MD, code codes.Code, msgHas string) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: status %v, want OK with success=false", what, err)
		return
	}
	if success || !strings.Contains(msg, msgHas) {
		t.Errorf("%s: success=%v message %q, want success=false and a message with %q", what, success, msg, msgHas)
	}
	if got := tr.Get(rafka.TrailerCode); len(got) != 1 || got[0] != code.String() {
		t.Errorf("%s: trailer %s = %v, want %v", what, rafka.TrailerCode, got, code)
	}
}

func checkOK(t *testing.T, what string, success bool, msg string, err error) {
	t.Helper()
	if err != nil || !success {
		t.Fatalf("%s: success=%v message %q err %v", what, success, msg, err)
	}
}

// TestRafkaEveryRPC: a client generated from rafka.proto calls every RPC of
// rafka.BrokerService against the serve path, over TCP and over Raptor.
func TestRafkaEveryRPC(t *testing.T) {
	for _, transport := range []string{"tcp", "raptor"} {
		t.Run(transport, func(t *testing.T) {
			const partitions = 3
			s := rafkaServe(t, partitions)
			c := rafkaDial(t, s.Addr(), transport)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const topic = "orders"

			reg, err := c.Register(ctx, &rafkapb.RegisterRequest{ClientId: "billing-1", ClientType: rafkapb.ClientType_CONSUMER})
			checkOK(t, "Register", reg.GetSuccess(), reg.GetMessage(), err)
			reg, err = c.Register(ctx, &rafkapb.RegisterRequest{ClientId: "producer-1", ClientType: rafkapb.ClientType_PRODUCER})
			checkOK(t, "Register producer", reg.GetSuccess(), reg.GetMessage(), err)
			var tr metadata.MD
			reg, err = c.Register(ctx, &rafkapb.RegisterRequest{}, grpc.Trailer(&tr))
			rafkaFailed(t, "Register without client_id", reg.GetSuccess(), reg.GetMessage(), err, tr, codes.InvalidArgument, "client_id")
			reg, err = c.Register(ctx, &rafkapb.RegisterRequest{ClientId: "x", ClientType: 7}, grpc.Trailer(&tr))
			rafkaFailed(t, "Register with client_type 7", reg.GetSuccess(), reg.GetMessage(), err, tr, codes.InvalidArgument, "client_type")

			sub, err := c.Subscribe(ctx, &rafkapb.SubscribeRequest{ConsumerId: "billing-1", Topic: topic})
			checkOK(t, "Subscribe", sub.GetSuccess(), sub.GetMessage(), err)
			sub, err = c.Subscribe(ctx, &rafkapb.SubscribeRequest{ConsumerId: "billing-1"}, grpc.Trailer(&tr))
			rafkaFailed(t, "Subscribe without topic", sub.GetSuccess(), sub.GetMessage(), err, tr, codes.InvalidArgument, "topic")

			sctx, stopStream := context.WithCancel(ctx)
			st := rafkaStream(t, sctx, c, "billing-1", "") // the subscription
			var pubs []*rafkapb.PublishResponse
			for i := range 6 {
				p, err := c.Publish(ctx, &rafkapb.PublishRequest{ProducerId: "producer-1", Topic: topic, Key: fmt.Sprintf("customer-%d", i), Payload: fmt.Sprintf("order %d", i)})
				checkOK(t, "Publish", p.GetSuccess(), p.GetMessage(), err)
				if p.GetMessageId() != rafka.MessageID(p.GetPartition(), p.GetOffset()) || p.GetPartition() < 0 || p.GetPartition() >= partitions {
					t.Fatalf("Publish %d: message_id %q partition %d offset %d", i, p.GetMessageId(), p.GetPartition(), p.GetOffset())
				}
				pubs = append(pubs, p)
			}
			byID := map[string]int{}
			for i, p := range pubs {
				byID[p.GetMessageId()] = i
			}
			for range pubs {
				m, err := st.Recv()
				if err != nil {
					t.Fatalf("Consume Recv: %v", err)
				}
				i, ok := byID[m.GetMessageId()]
				if !ok {
					t.Fatalf("Consume: message %q was not published (or twice)", m.GetMessageId())
				}
				delete(byID, m.GetMessageId())
				if m.GetTopic() != topic || m.GetPayload() != fmt.Sprintf("order %d", i) || m.GetOffset() != pubs[i].GetOffset() {
					t.Fatalf("Consume: %v, want topic %q payload %q offset %d", m, topic, fmt.Sprintf("order %d", i), pubs[i].GetOffset())
				}
				if d := time.Since(time.Unix(m.GetSentAt(), 0)); d < -time.Minute || d > time.Minute {
					t.Fatalf("Consume: sent_at %d is %v from now", m.GetSentAt(), d)
				}
				// As Rafka's consumer does: acknowledge, then update the offset.
				a, err := c.Acknowledge(ctx, &rafkapb.AcknowledgeRequest{ConsumerId: "billing-1", MessageId: m.GetMessageId(), Topic: topic})
				checkOK(t, "Acknowledge", a.GetSuccess(), a.GetMessage(), err)
				u, err := c.UpdateOffset(ctx, &rafkapb.UpdateOffsetRequest{ConsumerId: "billing-1", Topic: topic, Offset: m.GetOffset()})
				checkOK(t, "UpdateOffset", u.GetSuccess(), u.GetMessage(), err)
			}
			stopStream()
			if _, err := st.Recv(); status.Code(err) != codes.Canceled {
				t.Fatalf("Recv after cancel: %v, want Canceled", err)
			}

			a, err := c.Acknowledge(ctx, &rafkapb.AcknowledgeRequest{ConsumerId: "billing-1", MessageId: "f81d4fae-7dec", Topic: topic}, grpc.Trailer(&tr))
			rafkaFailed(t, "Acknowledge of a UUID", a.GetSuccess(), a.GetMessage(), err, tr, codes.InvalidArgument, "message_id")
			a, err = c.Acknowledge(ctx, &rafkapb.AcknowledgeRequest{ConsumerId: "billing-1", MessageId: "9-0", Topic: topic}, grpc.Trailer(&tr))
			rafkaFailed(t, "Acknowledge of partition 9", a.GetSuccess(), a.GetMessage(), err, tr, codes.OutOfRange, "no partition 9")
			u, err := c.UpdateOffset(ctx, &rafkapb.UpdateOffsetRequest{ConsumerId: "billing-1", Topic: topic, Offset: -1}, grpc.Trailer(&tr))
			rafkaFailed(t, "UpdateOffset -1", u.GetSuccess(), u.GetMessage(), err, tr, codes.InvalidArgument, "negative")
			u, err = c.UpdateOffset(ctx, &rafkapb.UpdateOffsetRequest{ConsumerId: "billing-1", Topic: "nope", Offset: 1}, grpc.Trailer(&tr))
			rafkaFailed(t, "UpdateOffset of an unknown topic", u.GetSuccess(), u.GetMessage(), err, tr, codes.NotFound, "unknown topic")
			u, err = c.UpdateOffset(ctx, &rafkapb.UpdateOffsetRequest{ConsumerId: "nobody", Topic: topic, Offset: 0}, grpc.Trailer(&tr))
			rafkaFailed(t, "UpdateOffset naming no single partition", u.GetSuccess(), u.GetMessage(), err, tr, codes.FailedPrecondition, "names no single partition")

			// The commits are the Kafka group's offsets: one past each acknowledged message.
			adm := kadmFor(t, s.KafkaBrokers())
			committed, err := adm.FetchOffsets(ctx, "billing-1")
			if err != nil {
				t.Fatal(err)
			}
			want := map[int32]int64{}
			for _, p := range pubs {
				want[p.GetPartition()] = max(want[p.GetPartition()], p.GetOffset()+1)
			}
			for p, o := range want {
				if got, ok := committed.Lookup(topic, p); !ok || got.At != o {
					t.Errorf("group billing-1 %s/%d committed %v, want %d", topic, p, got.At, o)
				}
			}

			// A consumer without commits tails: it sees only what comes after its header.
			// billing-1 resumes at its commits: it sees the same new messages, nothing old.
			fresh := rafkaStream(t, ctx, c, "audit-1", topic)
			resumed := rafkaStream(t, ctx, c, "billing-1", topic)
			p, err := c.Publish(ctx, &rafkapb.PublishRequest{Topic: topic, Payload: "after"})
			checkOK(t, "Publish after", p.GetSuccess(), p.GetMessage(), err)
			for name, st := range map[string]grpc.ServerStreamingClient[rafkapb.ConsumeResponse]{"audit-1": fresh, "billing-1": resumed} {
				m, err := st.Recv()
				if err != nil || m.GetMessageId() != p.GetMessageId() || m.GetPayload() != "after" {
					t.Fatalf("%s: first message %v, %v; want %s \"after\"", name, m, err, p.GetMessageId())
				}
			}

			met, err := c.GetMetrics(ctx, &rafkapb.GetMetricsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			payloadBytes := uint64(len("after"))
			for i := range pubs {
				payloadBytes += uint64(len(fmt.Sprintf("order %d", i)) + len(fmt.Sprintf("customer-%d", i)))
			}
			if met.GetTotalMessages() != 7 || met.GetTotalBytes() < payloadBytes || met.GetOldestMessageAgeSecs() > 60 {
				t.Errorf("GetMetrics = %v, want 7 messages, at least their %d key and payload bytes, an age under a minute", met, payloadBytes)
			}
			hc, err := c.HealthCheck(ctx, &rafkapb.HealthCheckRequest{BrokerId: "peer"})
			if err != nil || !hc.GetHealthy() || !strings.Contains(hc.GetStatus(), s.KafkaBrokers()[0]) {
				t.Errorf("HealthCheck = %v, %v; want healthy naming %s", hc, err, s.KafkaBrokers()[0])
			}
			if d := time.Since(time.Unix(hc.GetTimestamp(), 0)); d < -time.Minute || d > time.Minute {
				t.Errorf("HealthCheck timestamp %d is %v from now", hc.GetTimestamp(), d)
			}
			ci, err := c.GetClusterInfo(ctx, &rafkapb.GetClusterInfoRequest{RequestingBrokerId: "peer"})
			if err != nil {
				t.Fatal(err)
			}
			host, port, _ := net.SplitHostPort(s.KafkaBrokers()[0])
			if ci.GetClusterSize() != 1 || len(ci.GetBrokers()) != 1 || ci.GetBrokers()[0].GetAddress() != host ||
				strconv.Itoa(int(ci.GetBrokers()[0].GetPort())) != port || ci.GetBrokers()[0].GetTotalPartitions() != partitions || !ci.GetBrokers()[0].GetIsHealthy() {
				t.Errorf("GetClusterInfo = %v, want the one embedded broker %s leading %d partitions", ci, s.KafkaBrokers()[0], partitions)
			}

			for name, call := range map[string]func() error{
				"ForwardMessage": func() error {
					_, err := c.ForwardMessage(ctx, &rafkapb.ForwardMessageRequest{Topic: topic})
					return err
				},
				"JoinCluster": func() error { _, err := c.JoinCluster(ctx, &rafkapb.JoinClusterRequest{BrokerId: "b"}); return err },
				"GossipMessage": func() error {
					_, err := c.GossipMessage(ctx, &rafkapb.GossipMessageRequest{FromNodeId: "n"})
					return err
				},
				"GetMeshTopology": func() error {
					_, err := c.GetMeshTopology(ctx, &rafkapb.GetMeshTopologyRequest{})
					return err
				},
				"JoinMesh":  func() error { _, err := c.JoinMesh(ctx, &rafkapb.JoinMeshRequest{NodeId: "n"}); return err },
				"LeaveMesh": func() error { _, err := c.LeaveMesh(ctx, &rafkapb.LeaveMeshRequest{NodeId: "n"}); return err },
			} {
				if err := call(); status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), name+" is not served") {
					t.Errorf("%s: %v, want Unimplemented saying why", name, err)
				}
			}

			// Consume without an ID fails in the status (its response has no success field).
			bad, err := c.Consume(ctx, &rafkapb.ConsumeRequest{Topic: topic})
			if err == nil {
				_, err = bad.Recv()
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("Consume without id: %v, want InvalidArgument", err)
			}
			if st := s.Bridge().Stats(); st.Published != 7 || st.Acknowledged != 6 || st.OffsetUpdates != 6 || st.Delivered != 8 {
				t.Errorf("bridge stats %+v, want 7 published, 6 acknowledged, 6 offset updates, 8 delivered", st)
			}
		})
	}
}

func kadmFor(t *testing.T, brokers []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// TestRafkaExactlyOnce: 10,000 messages published by 8 Rafka-protocol
// producers (half over TCP, half over Raptor) arrive exactly once, in
// offset order per partition, on one Consume stream over Raptor.
func TestRafkaExactlyOnce(t *testing.T) {
	const n, producers, partitions = 10000, 8, 3
	s := rafkaServe(t, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	consumer := rafkaDial(t, s.Addr(), "raptor")
	if r, err := consumer.Subscribe(ctx, &rafkapb.SubscribeRequest{ConsumerId: "c", Topic: "seq"}); err != nil || !r.GetSuccess() {
		t.Fatalf("Subscribe: %v %v", r, err)
	}
	st := rafkaStream(t, ctx, consumer, "c", "seq")

	clients := map[string]rafkapb.BrokerServiceClient{"tcp": rafkaDial(t, s.Addr(), "tcp"), "raptor": rafkaDial(t, s.Addr(), "raptor")}
	errc := make(chan error, producers)
	var wg sync.WaitGroup
	for w := range producers {
		c := clients[[]string{"tcp", "raptor"}[w%2]]
		wg.Go(func() {
			for i := w; i < n; i += producers {
				r, err := c.Publish(ctx, &rafkapb.PublishRequest{ProducerId: fmt.Sprintf("p%d", w), Topic: "seq", Key: fmt.Sprintf("k%d", i%17), Payload: fmt.Sprintf("seq=%d", i)})
				if err == nil && !r.GetSuccess() {
					err = errors.New(r.GetMessage())
				}
				if err != nil {
					errc <- fmt.Errorf("producer %d, message %d: %w", w, i, err)
					return
				}
			}
		})
	}
	seen := make([]int, n)
	last := map[int32]int64{}
	var dups, got int
	for got < n {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", got, err)
		}
		var i int
		if _, err := fmt.Sscanf(m.GetPayload(), "seq=%d", &i); err != nil || i < 0 || i >= n {
			t.Fatalf("payload %q is not a sequence number below %d", m.GetPayload(), n)
		}
		p, o, err := rafka.ParseMessageID(m.GetMessageId())
		if err != nil || o != m.GetOffset() {
			t.Fatalf("message_id %q offset %d: %v", m.GetMessageId(), m.GetOffset(), err)
		}
		if l, ok := last[p]; ok && o <= l {
			t.Fatalf("partition %d: offset %d after %d", p, o, l)
		}
		last[p] = o
		if seen[i]++; seen[i] > 1 {
			dups++
		}
		got++
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	lost := 0
	for _, c := range seen {
		if c == 0 {
			lost++
		}
	}
	t.Logf("%d messages on the stream: %d duplicates, %d lost, partitions %v", got, dups, lost, last)
	if dups != 0 || lost != 0 {
		t.Fatalf("%d duplicates and %d lost of %d", dups, lost, n)
	}
}

// TestRafkaKafkaInterop: records a franz-go producer writes (over Raptor,
// with the compat/kafka dialer) appear on a Consume stream, binary values
// intact through the base64 marker; messages Rafka producers publish are
// read by a franz-go consumer with their key, payload and producer ID, at
// the partition and offset Publish answered.
func TestRafkaKafkaInterop(t *testing.T) {
	s := rafkaServe(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := rafkaDial(t, s.Addr(), "raptor")
	st := rafkaStream(t, ctx, c, "mirror", "interop")

	kd, err := kafka.NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer kd.Close()
	kc, err := kgo.NewClient(kgo.SeedBrokers(s.KafkaBrokers()...), kd.Opt(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"interop": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	values := [][]byte{[]byte("plain text"), {0xff, 0xfe, 0x00, 0x80}, []byte("base64:looks encoded"), {}, []byte("grüße \xe2\x82")}
	old := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond) // the first record: the oldest GetMetrics sees
	for i, v := range values {
		rec := &kgo.Record{Topic: "interop", Value: v}
		if i == 0 {
			rec.Timestamp = old
		}
		if err := kc.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i, v := range values {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		back, err := rafka.DecodePayload(m.GetPayload())
		if err != nil || string(back) != string(v) {
			t.Errorf("franz-go value %q arrived as payload %q, decoding to %q (%v)", v, m.GetPayload(), back, err)
		}
		if i == 0 && m.GetSentAt() != old.Unix() {
			t.Errorf("sent_at %d, want the record's timestamp %d (seconds)", m.GetSentAt(), old.Unix())
		}
	}
	met, err := c.GetMetrics(ctx, &rafkapb.GetMetricsRequest{})
	if age := met.GetOldestMessageAgeSecs(); err != nil || age < 7200 || age > 7200+60 || met.GetTotalMessages() != uint64(len(values)) {
		t.Errorf("GetMetrics = %v, %v; want %d messages, the oldest two hours old", met, err, len(values))
	}

	want := map[string]*rafkapb.PublishResponse{}
	for i := range 4 {
		r, err := c.Publish(ctx, &rafkapb.PublishRequest{ProducerId: "rp-1", Topic: "interop", Key: fmt.Sprintf("k%d", i), Payload: fmt.Sprintf("from rafka %d", i)})
		checkOK(t, "Publish", r.GetSuccess(), r.GetMessage(), err)
		want[fmt.Sprintf("k%d", i)] = r
	}
	seen := 0
	for seen < len(values)+len(want) {
		fs := kc.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			w, ok := want[string(r.Key)]
			if !ok {
				return // one of the franz-go records
			}
			if string(r.Value) != strings.Replace(string(r.Key), "k", "from rafka ", 1) || r.Partition != w.GetPartition() || r.Offset != w.GetOffset() ||
				len(r.Headers) != 1 || r.Headers[0].Key != rafka.HeaderProducerID || string(r.Headers[0].Value) != "rp-1" {
				t.Errorf("franz-go read %q=%q at %d/%d headers %v; Publish said %d/%d", r.Key, r.Value, r.Partition, r.Offset, r.Headers, w.GetPartition(), w.GetOffset())
			}
			delete(want, string(r.Key))
		})
	}
	if len(want) != 0 {
		t.Errorf("franz-go never read %v", slices.Collect(mapKeys(want)))
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
