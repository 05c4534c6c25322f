package integration

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/compat/rafka"
	"github.com/raptormq/raptor/reliable"
)

// rafkaEnv is a Rafka bridge served over Raptor, storing into the embedded
// Kafka-protocol broker (reached over Raptor too), and a client dialing the
// bridge over Raptor.
type rafkaEnv struct {
	broker *kafka.Broker
	bridge *rafka.Bridge
	ln     *reliable.Listener
	client *rafka.Client
}

// newRafkaEnv starts everything on 127.0.0.1; test cleanup stops it all:
// client, bridge (its streams end), gRPC server, listener, broker.
func newRafkaEnv(t *testing.T, partitions int, topics ...string) *rafkaEnv {
	t.Helper()
	broker, err := kafka.NewBroker(kafka.BrokerConfig{Topics: topics, Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	kd, err := kafka.NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kd.Close() })
	bridge, err := rafka.NewBridge(rafka.Config{Brokers: []string{broker.Addr()}, Dial: kd.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := reliable.Listen("127.0.0.1:0", nil)
	if err != nil {
		bridge.Close()
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	bridge.RegisterOn(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	d := &reliable.Dialer{}
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "udp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		d.Close()
		bridge.Close()
		srv.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
		ln.Close()
	})
	return &rafkaEnv{broker: broker, bridge: bridge, ln: ln, client: rafka.NewClient(cc)}
}

type rafkaPos struct {
	part int32
	off  int64
}

// TestRafkaOverRaptor: 10,000 messages published over Raptor through the
// bridge into the Kafka-protocol broker, consumed by push stream with
// acknowledgements, the consumer restarted half-way: every message is
// delivered once to the group, in offset order per partition, at the
// partition and offset Publish reported, and the restarted stream resumes
// exactly at the committed offsets.
func TestRafkaOverRaptor(t *testing.T) {
	const n, parts, topic = 10000, 6, "orders"
	env := newRafkaEnv(t, parts, topic)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	c := env.client

	reg, err := c.Register(ctx, &rafka.RegisterRequest{ClientID: "billing-1", Group: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	if reg.ConsumerID != "billing-1" || reg.Group != "billing" {
		t.Fatalf("Register = %+v", reg)
	}
	if sub, err := c.Subscribe(ctx, &rafka.SubscribeRequest{ConsumerID: reg.ConsumerID, Topics: []string{topic}}); err != nil || len(sub.Topics) != 1 {
		t.Fatalf("Subscribe = %+v, %v", sub, err)
	}

	// Publish, 32 callers at once; keys spread the messages over every
	// partition.
	where := make([]rafkaPos, n)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				resp, err := c.Publish(ctx, &rafka.PublishRequest{
					Topic:   topic,
					Key:     fmt.Appendf(nil, "customer-%d", i%97),
					Value:   binary.BigEndian.AppendUint64(make([]byte, 0, 64), uint64(i)),
					Headers: []rafka.Header{{Key: "seq", Value: fmt.Append(nil, i)}},
				})
				if err != nil {
					errs <- fmt.Errorf("publish %d: %w", i, err)
					return
				}
				where[i] = rafkaPos{resp.Partition, resp.Offset}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("published %d messages in %v", n, time.Since(start).Round(time.Millisecond))
	perPart := make([]int64, parts)
	for _, p := range where {
		perPart[p.part]++
	}
	for p, k := range perPart {
		if k == 0 {
			t.Fatalf("no message in partition %d: keys did not spread", p)
		}
	}

	seen := make([]int, n)         // deliveries per message
	next := make([]int64, parts)   // next offset expected per partition
	acked := make([]int64, parts)  // committed (offset+1) per partition
	latest := make([]int64, parts) // last offset received per partition
	for i := range latest {
		latest[i] = -1
	}
	receive := func(st *rafka.ConsumeStream, want int, phase string) {
		t.Helper()
		got := 0
		ack := func() {
			for p := range latest {
				if latest[p] >= acked[p] {
					r, err := c.Acknowledge(ctx, &rafka.AcknowledgeRequest{ConsumerID: reg.ConsumerID, Topic: topic, Partition: int32(p), Offset: latest[p]})
					if err != nil {
						t.Fatalf("%s: Acknowledge partition %d offset %d: %v", phase, p, latest[p], err)
					}
					if r.Committed != latest[p]+1 {
						t.Fatalf("%s: Acknowledge committed %d, want %d", phase, r.Committed, latest[p]+1)
					}
					acked[p] = r.Committed
				}
			}
		}
		for got < want {
			m, err := st.Recv()
			if err != nil {
				t.Fatalf("%s: Recv after %d messages: %v", phase, got, err)
			}
			seq := int(binary.BigEndian.Uint64(m.Value))
			if seq < 0 || seq >= n {
				t.Fatalf("%s: message value %x out of range", phase, m.Value)
			}
			if w := where[seq]; w.part != m.Partition || w.off != m.Offset {
				t.Fatalf("%s: message %d at %d/%d, Publish said %d/%d", phase, seq, m.Partition, m.Offset, w.part, w.off)
			}
			if m.Offset != next[m.Partition] {
				t.Fatalf("%s: partition %d delivered offset %d, want %d (in order, once)", phase, m.Partition, m.Offset, next[m.Partition])
			}
			if len(m.Headers) != 1 || string(m.Headers[0].Value) != fmt.Sprint(seq) {
				t.Fatalf("%s: message %d headers %+v", phase, seq, m.Headers)
			}
			next[m.Partition]++
			latest[m.Partition] = m.Offset
			seen[seq]++
			got++
			if got%250 == 0 {
				ack()
			}
		}
		ack()
	}

	// Phase 1: half of the messages, acknowledged, then the consumer stops.
	st, err := c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := c.GetMetrics(ctx); err != nil || m.ActiveStreams != 1 {
		t.Fatalf("GetMetrics with one stream: %+v, %v", m, err)
	}
	receive(st, n/2, "first stream")
	st.Close()
	var committed int64
	for p := range acked {
		committed += acked[p]
	}
	if committed != n/2 {
		t.Fatalf("committed %d messages, want %d", committed, n/2)
	}

	// Phase 2: a restarted consumer (registering again, as a new process
	// would) resumes exactly at the committed offsets.
	if _, err := c.Register(ctx, &rafka.RegisterRequest{ClientID: "billing-1", Group: "billing"}); err != nil {
		t.Fatal(err)
	}
	st, err = c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	copy(next, acked) // the first message of each partition must be its committed offset
	receive(st, n-n/2, "restarted stream")
	for seq, k := range seen {
		if k != 1 {
			t.Fatalf("message %d delivered %d times", seq, k)
		}
	}
	for p := range acked {
		if acked[p] != perPart[p] {
			t.Fatalf("partition %d committed at %d, want %d (its end)", p, acked[p], perPart[p])
		}
	}

	m, err := c.GetMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("metrics: %+v", *m)
	if m.Published != n || m.PublishErrors != 0 || m.Delivered < n || m.StreamsOpened != 2 || m.ActiveStreams != 1 ||
		m.Registered != 2 || m.Consumers != 1 || m.Acknowledged == 0 {
		t.Fatalf("metrics %+v: want %d published, >= %d delivered, 2 streams opened, 1 active, 2 registrations of 1 consumer, some acks", *m, n, n)
	}
	st.Close()
	if env.ln.SessionCount() == 0 {
		t.Fatal("no Raptor session on the bridge's listener")
	}
	raptorBroker := env.broker.Listeners()[0].Listeners()[1].(interface{ SessionCount() int })
	if raptorBroker.SessionCount() == 0 {
		t.Fatal("no Raptor session on the broker: the bridge did not reach it over Raptor")
	}
}

// TestRafkaSeekAndReplace: UpdateOffset moves a running stream back; a
// second Consume of the same consumer replaces the first, which ends with
// a StreamReplacedError.
func TestRafkaSeekAndReplace(t *testing.T) {
	const topic, n = "seek", 30
	env := newRafkaEnv(t, 3, topic)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := env.client
	for i := 0; i < n; i++ {
		if _, err := c.Publish(ctx, &rafka.PublishRequest{Topic: topic, Key: fmt.Append(nil, i), Value: fmt.Append(nil, i)}); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := c.Register(ctx, &rafka.RegisterRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Group != reg.ConsumerID {
		t.Fatalf("default group %q, want the consumer ID %q", reg.Group, reg.ConsumerID)
	}
	st, err := c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	var last rafka.Message
	for i := 0; i < n; i++ {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.Offset > 0 {
			last = *m
		}
	}
	// Everything was delivered; moving a partition back to 0 makes the
	// stream deliver it again from 0.
	up, err := c.UpdateOffset(ctx, &rafka.UpdateOffsetRequest{ConsumerID: reg.ConsumerID, Topic: topic, Partition: last.Partition, Offset: 0})
	if err != nil || up.Committed != 0 {
		t.Fatalf("UpdateOffset = %+v, %v", up, err)
	}
	for want := int64(0); want <= last.Offset; want++ {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.Partition != last.Partition || m.Offset != want {
			t.Fatalf("after seek: %d/%d, want %d/%d", m.Partition, m.Offset, last.Partition, want)
		}
	}

	st2, err := c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	for {
		_, err := st.Recv()
		if err == nil {
			continue // anything still in flight on the replaced stream
		}
		var re *rafka.StreamReplacedError
		if !errors.As(err, &re) || re.ConsumerID != reg.ConsumerID || status.Code(err) != codes.Aborted {
			t.Fatalf("replaced stream ended with %v (%T), want StreamReplacedError", err, err)
		}
		break
	}
	// The replacement resumes from the committed offsets: nothing was
	// acknowledged (the seek committed 0 in one partition), so it starts
	// from the beginning.
	if m, err := st2.Recv(); err != nil || m.Offset != 0 {
		t.Fatalf("replacement's first message %+v, %v; want offset 0", m, err)
	}
}

// TestRafkaErrors: the bridge's errors reach the client typed, naming the
// failing value, with fitting gRPC codes.
func TestRafkaErrors(t *testing.T) {
	env := newRafkaEnv(t, 2, "known")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := env.client

	_, err := c.Publish(ctx, &rafka.PublishRequest{Topic: "no-such-topic", Value: []byte("x")})
	var ut *rafka.UnknownTopicError
	if !errors.As(err, &ut) || ut.Topic != "no-such-topic" || status.Code(err) != codes.NotFound {
		t.Fatalf("Publish to an unknown topic: %v (%T)", err, err)
	}
	t.Logf("unknown topic: %v", err)

	_, err = c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: "ghost", Topic: "known"})
	var uc *rafka.UnknownConsumerError
	if !errors.As(err, &uc) || uc.ConsumerID != "ghost" || status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Consume without Register: %v (%T)", err, err)
	}
	t.Logf("consume without register: %v", err)

	reg, err := c.Register(ctx, &rafka.RegisterRequest{ClientID: "e1"})
	if err != nil {
		t.Fatal(err)
	}
	var ia *rafka.InvalidArgumentError
	if _, err = c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID}); !errors.As(err, &ia) || ia.Field != "topic" {
		t.Fatalf("Consume with no topic and no subscription: %v (%T)", err, err)
	}
	if _, err = c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: "nope"}); !errors.As(err, &ut) || ut.Topic != "nope" {
		t.Fatalf("Consume of an unknown topic: %v (%T)", err, err)
	}
	if _, err = c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: "known", StartOffset: -7}); !errors.As(err, &ia) || ia.Field != "start_offset" || ia.Value != "-7" {
		t.Fatalf("Consume from offset -7: %v (%T)", err, err)
	}
	if _, err = c.Subscribe(ctx, &rafka.SubscribeRequest{ConsumerID: reg.ConsumerID, Topics: []string{"known", "missing"}}); !errors.As(err, &ut) || ut.Topic != "missing" {
		t.Fatalf("Subscribe to an unknown topic: %v (%T)", err, err)
	}
	var up *rafka.UnknownPartitionError
	if _, err = c.Acknowledge(ctx, &rafka.AcknowledgeRequest{ConsumerID: reg.ConsumerID, Topic: "known", Partition: 9, Offset: 1}); !errors.As(err, &up) ||
		up.Partition != 9 || up.Partitions != 2 || status.Code(err) != codes.OutOfRange {
		t.Fatalf("Acknowledge of partition 9 of 2: %v (%T)", err, err)
	}
	if _, err = c.Acknowledge(ctx, &rafka.AcknowledgeRequest{ConsumerID: "ghost", Topic: "known", Offset: 1}); !errors.As(err, &uc) {
		t.Fatalf("Acknowledge by an unregistered consumer: %v (%T)", err, err)
	}
	if _, err = c.UpdateOffset(ctx, &rafka.UpdateOffsetRequest{Group: "g", Topic: "known", Offset: -1}); !errors.As(err, &ia) || ia.Field != "offset" {
		t.Fatalf("UpdateOffset to -1: %v (%T)", err, err)
	}
	// Acknowledgements never move the committed offset back.
	if r, err := c.Acknowledge(ctx, &rafka.AcknowledgeRequest{Group: "g", Topic: "known", Offset: 9}); err != nil || r.Committed != 10 {
		t.Fatalf("Acknowledge 9: %+v, %v", r, err)
	}
	if r, err := c.Acknowledge(ctx, &rafka.AcknowledgeRequest{Group: "g", Topic: "known", Offset: 3}); err != nil || r.Committed != 10 {
		t.Fatalf("Acknowledge 3 after 9: %+v, %v; want committed 10", r, err)
	}

	m, err := c.GetMetrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m.PublishErrors != 1 || m.Published != 0 {
		t.Fatalf("metrics %+v: want 1 publish error", *m)
	}

	env.bridge.Close()
	if _, err := c.Publish(ctx, &rafka.PublishRequest{Topic: "known"}); !errors.Is(err, rafka.ErrBridgeClosed) || status.Code(err) != codes.Unavailable {
		t.Fatalf("Publish after Close: %v (%T)", err, err)
	}
}

// TestRafkaGroupSharesPartitions: two consumers of one group split the
// topic's partitions: together they receive every message, each in offset
// order per partition, and both receive some. A message can reach both only
// around the rebalance that gives the second consumer its partitions
// (unacknowledged messages are redelivered, as in any Kafka group).
func TestRafkaGroupSharesPartitions(t *testing.T) {
	const topic, parts = "shared", 6
	env := newRafkaEnv(t, parts, topic)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := env.client

	type delivery struct {
		who int
		m   *rafka.Message
	}
	got := make(chan delivery, 1024)
	var wg sync.WaitGroup
	streams := make([]*rafka.ConsumeStream, 2)
	for i := range streams {
		reg, err := c.Register(ctx, &rafka.RegisterRequest{ClientID: fmt.Sprintf("worker-%d", i), Group: "workers"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		streams[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 1; ; k++ {
				m, err := st.Recv()
				if err != nil {
					return // the stream closed at the end of the test
				}
				if k%50 == 0 {
					c.Acknowledge(ctx, &rafka.AcknowledgeRequest{ConsumerID: reg.ConsumerID, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
				}
				select {
				case got <- delivery{i, m}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	defer func() {
		for _, st := range streams {
			st.Close()
		}
		wg.Wait()
	}()

	published := 0
	received := map[rafkaPos]int{}
	last := [2][parts]int64{}
	for i := range last {
		for p := range last[i] {
			last[i][p] = -1
		}
	}
	per := [2]int{}
	publish := func(k int) {
		for j := 0; j < k; j++ {
			if _, err := c.Publish(ctx, &rafka.PublishRequest{Topic: topic, Key: fmt.Append(nil, published), Value: fmt.Append(nil, published)}); err != nil {
				t.Fatal(err)
			}
			published++
		}
	}
	// Publish in rounds of 200, each received in full before the next,
	// until both consumers have received messages (the second gets
	// partitions once the group has rebalanced) and 2,000 are out.
	for per[0] == 0 || per[1] == 0 || published < 2000 {
		publish(200)
		for len(received) < published {
			var d delivery
			select {
			case d = <-got:
			case <-ctx.Done():
				t.Fatalf("%d of %d messages received (per consumer %v)", len(received), published, per)
			}
			pos := rafkaPos{d.m.Partition, d.m.Offset}
			received[pos]++
			per[d.who]++
			if received[pos] == 1 && d.m.Offset <= last[d.who][d.m.Partition] {
				t.Fatalf("consumer %d: partition %d went from %d to %d", d.who, d.m.Partition, last[d.who][d.m.Partition], d.m.Offset)
			}
			last[d.who][d.m.Partition] = d.m.Offset
		}
	}
	dups := 0
	for _, k := range received {
		dups += k - 1
	}
	t.Logf("%d messages: consumer 0 received %d, consumer 1 %d; %d redelivered around the rebalance", published, per[0], per[1], dups)
	if dups > published/2 {
		t.Fatalf("%d of %d messages delivered twice: the group does not split the partitions", dups, published)
	}
}
