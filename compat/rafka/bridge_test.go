package rafka

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/compat/rafka/rafkapb"
)

func TestConfigPopulate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"no brokers", Config{}, "Brokers is empty"},
		{"bad broker", Config{Brokers: []string{"localhost"}}, `"localhost" is not host:port`},
		{"negative streams", Config{Brokers: []string{"h:1"}, MaxStreams: -1}, "MaxStreams is -1"},
		{"negative clients", Config{Brokers: []string{"h:1"}, MaxClients: -3}, "MaxClients is -3"},
		{"bad partitions", Config{Brokers: []string{"h:1"}, TopicPartitions: -2}, "TopicPartitions is -2"},
		{"negative call timeout", Config{Brokers: []string{"h:1"}, CallTimeout: -time.Second}, "CallTimeout is -1s"},
		{"defaults", Config{Brokers: []string{"h:1"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cfg.populate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("populate: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil || c.MaxClients != 10000 || c.MaxStreams != 1024 || c.RecentDeliveries != 4096 || c.TopicPartitions != -1 || c.CallTimeout != 30*time.Second || c.Logger == nil {
				t.Fatalf("populate = %+v, %v", c, err)
			}
		})
	}
}

// TestFailureBodies: every RPC whose response has success and message
// answers failures in the body; the others (and only they) in the status.
func TestFailureBodies(t *testing.T) {
	var got []string
	for m := range failureBodies {
		got = append(got, strings.TrimPrefix(m, "/rafka.BrokerService/"))
	}
	slices.Sort(got)
	want := []string{"Acknowledge", "ForwardMessage", "GossipMessage", "JoinCluster", "JoinMesh", "LeaveMesh", "Publish", "Register", "Subscribe", "UpdateOffset"}
	if !slices.Equal(got, want) {
		t.Fatalf("failure bodies for %v, want %v", got, want)
	}
	r := failureBodies[rafkapb.BrokerService_Publish_FullMethodName]("rafka: boom")
	if p, ok := r.(*rafkapb.PublishResponse); !ok || p.GetSuccess() || p.GetMessage() != "rafka: boom" {
		t.Fatalf("failure body %T %v", r, r)
	}
}

func TestPartitionOf(t *testing.T) {
	c := &client{id: "c", lastAck: map[string]msgAddr{}}
	for _, d := range []delivery{{"t", msgAddr{0, 5}}, {"t", msgAddr{1, 5}}, {"t", msgAddr{1, 6}}, {"u", msgAddr{2, 7}}} {
		c.noteDelivery(3, d.topic, d.msgAddr) // a ring of 3: the first is forgotten
	}
	c.lastAck["t"] = msgAddr{2, 9}
	for _, tc := range []struct {
		topic      string
		off        int64
		partitions int32
		want       int32
		cands      []int32
	}{
		{"t", 123, 1, 0, nil},         // one partition
		{"t", 9, 3, 2, nil},           // the last acknowledged message
		{"t", 6, 3, 1, nil},           // one recent delivery
		{"t", 5, 3, 1, nil},           // partition 0's offset 5 fell out of the ring
		{"u", 7, 3, 2, nil},           // per topic
		{"t", 7, 3, -1, []int32(nil)}, // never delivered
		{"u", 5, 3, -1, []int32(nil)}, // other topic's offset
	} {
		p, err := c.partitionOf(tc.topic, tc.off, tc.partitions)
		if tc.want >= 0 {
			if err != nil || p != tc.want {
				t.Errorf("partitionOf(%q, %d, %d) = %d, %v; want %d", tc.topic, tc.off, tc.partitions, p, err, tc.want)
			}
			continue
		}
		var oe *OffsetPartitionError
		if !errors.As(err, &oe) || status.Code(err) != codes.FailedPrecondition {
			t.Errorf("partitionOf(%q, %d, %d) = %d, %v; want an OffsetPartitionError", tc.topic, tc.off, tc.partitions, p, err)
		}
	}
	c.noteDelivery(3, "t", msgAddr{0, 6}) // now offset 6 came from two partitions
	if _, err := c.partitionOf("t", 6, 3); err == nil || !strings.Contains(err.Error(), "[0 1]") {
		t.Errorf("partitionOf of an offset two partitions delivered: %v, want both candidates named", err)
	}
}

// TestCloseEndsStreams: Close ends a running Consume with ErrBridgeClosed
// (Unavailable), waits for it, and later calls are refused in the way each
// RPC reports errors.
func TestCloseEndsStreams(t *testing.T) {
	br, err := kafka.NewBroker(kafka.BrokerConfig{Partitions: 1, Topics: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	b, err := NewBridge(Config{Brokers: []string{br.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	srv := b.GRPCServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Stop()
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := rafkapb.NewBrokerServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Consume(ctx, &rafkapb.ConsumeRequest{Id: "c", Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Header(); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Publish(ctx, &rafkapb.PublishRequest{Topic: "missing"}); err != nil || p.GetSuccess() || !strings.Contains(p.GetMessage(), `unknown topic "missing"`) {
		t.Fatalf("Publish to a missing topic without CreateTopics: %v, %v", p, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "bridge closed") {
		t.Fatalf("stream after Close: %v, want Unavailable bridge closed", err)
	}
	if p, err := c.Publish(ctx, &rafkapb.PublishRequest{Topic: "t"}); err != nil || p.GetSuccess() || p.GetMessage() != "rafka: bridge closed" {
		t.Fatalf("Publish after Close: %v, %v", p, err)
	}
	if _, err := c.GetMetrics(ctx, &rafkapb.GetMetricsRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("GetMetrics after Close: %v, want Unavailable", err)
	}
	if s := b.Stats(); s.ActiveStreams != 0 || s.StreamsOpened != 1 || s.Failed < 3 {
		t.Fatalf("stats after Close: %+v", s)
	}
}

// TestBrokerDown: with the Kafka cluster gone, unary calls answer within
// CallTimeout the way Rafka's clients read failures, and HealthCheck says
// unhealthy.
func TestBrokerDown(t *testing.T) {
	s, err := NewServer(ServerConfig{
		Addr:     "127.0.0.1:0",
		Embedded: kafka.BrokerConfig{Partitions: 1, Topics: []string{"t"}},
		Bridge:   Config{CallTimeout: 2 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(time.Second)
	cc, err := grpc.NewClient("passthrough:///"+s.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := rafkapb.NewBrokerServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if p, err := c.Publish(ctx, &rafkapb.PublishRequest{Topic: "t", Payload: "before"}); err != nil || !p.GetSuccess() {
		t.Fatalf("Publish before: %v %v", p, err)
	}
	if err := s.Broker().Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := c.Publish(ctx, &rafkapb.PublishRequest{Topic: "t", Payload: "after"})
	if err != nil || p.GetSuccess() || !strings.Contains(p.GetMessage(), "Kafka") {
		t.Fatalf("Publish with the broker gone: %v, %v; want success=false naming the Kafka cluster", p, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Publish with the broker gone took %v, want about CallTimeout (2s)", d)
	}
	hc, err := c.HealthCheck(ctx, &rafkapb.HealthCheckRequest{})
	if err != nil || hc.GetHealthy() || !strings.HasPrefix(hc.GetStatus(), "unhealthy") {
		t.Fatalf("HealthCheck with the broker gone: %v, %v; want unhealthy", hc, err)
	}
	t.Logf("Publish: %q; HealthCheck: %q", p.GetMessage(), hc.GetStatus())
}

func TestClientIDs(t *testing.T) {
	b, err := NewBridge(Config{Brokers: []string{"127.0.0.1:1"}, MaxClients: 2}) // never dialed here
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		id   string
		want string // error text, "" for none
	}{
		{"a", ""},
		{"a", ""}, // the same client again
		{"", `consumer_id "": empty`},
		{strings.Repeat("é", 200), "400 bytes, more than Kafka's 249"},
		{"b", ""},
		{"c", ""}, // forgets "a", the least recently used
		{"b", ""},
		{"a", ""}, // forgets "c"
	} {
		_, err := b.client("consumer_id", tc.id)
		if tc.want == "" {
			if err != nil {
				t.Errorf("client(%.10q): %v", tc.id, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !utf8.ValidString(err.Error()) {
			t.Errorf("client(%.10q) = %v, want a valid UTF-8 error with %q", tc.id, err, tc.want)
		}
		if st := toStatus(err); reasonOf(st) == "" {
			t.Errorf("client(%.10q): status %v has no ErrorInfo reason", tc.id, st)
		}
	}
	b.mu.Lock()
	_, hasA := b.clients["a"]
	_, hasB := b.clients["b"]
	n := len(b.clients)
	b.mu.Unlock()
	if st := b.Stats(); n != 2 || !hasA || !hasB || st.Evicted != 2 {
		t.Errorf("clients a %v b %v of %d, %d evicted; want a and b, 2 evicted", hasA, hasB, n, st.Evicted)
	}
	// Clients with running streams are not forgotten: with both slots
	// streaming, a new client is refused.
	for _, id := range []string{"a", "b"} {
		c, _ := b.client("consumer_id", id)
		if err := b.openStream(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.client("consumer_id", "d"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a third client while two stream: %v, want ResourceExhausted", err)
	}
}
