package rafka

import (
	"context"
	"errors"
	"net"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/status"

	"github.com/raptormq/raptor/compat/kafka"
)

func TestCodecRoundTrip(t *testing.T) {
	if encoding.GetCodec(CodecName) == nil {
		t.Fatalf("codec %q is not registered with grpc", CodecName)
	}
	for _, tc := range []struct {
		name string
		in   any
		out  any
	}{
		{"publish", &PublishRequest{Topic: "t", Key: []byte("k"), Value: []byte{0, 1, 2}, Headers: []Header{{"a", []byte("1")}, {"a", []byte("2")}}}, new(PublishRequest)},
		{"publish response", &PublishResponse{Partition: 3, Offset: 1 << 40}, new(PublishResponse)},
		{"consume", &ConsumeRequest{ConsumerID: "c", Group: "g", Topic: "t", StartOffset: StartLatest}, new(ConsumeRequest)},
		{"consume response", &ConsumeResponse{Messages: []Message{{Topic: "t", Partition: 1, Offset: 2, Value: []byte("v"), Timestamp: 1700000000000}}}, new(ConsumeResponse)},
		{"ack", &AcknowledgeRequest{ConsumerID: "c", Topic: "t", Partition: 5, Offset: 9}, new(AcknowledgeRequest)},
		{"register", &RegisterRequest{ClientID: "x", Group: "g"}, new(RegisterRequest)},
		{"subscribe", &SubscribeRequest{ConsumerID: "c", Topics: []string{"a", "b"}}, new(SubscribeRequest)},
		{"update", &UpdateOffsetRequest{Group: "g", Topic: "t", Offset: 0}, new(UpdateOffsetRequest)},
		{"metrics", &GetMetricsResponse{Published: 1, Delivered: 2, ActiveStreams: 3}, new(GetMetricsResponse)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Codec{}.Marshal(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if err := (Codec{}).Unmarshal(b, tc.out); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.in, tc.out) {
				t.Fatalf("round trip: %+v, want %+v", tc.out, tc.in)
			}
		})
	}
	err := Codec{}.Unmarshal([]byte{0xc1}, new(PublishRequest)) // 0xc1 is never used in msgpack
	if err == nil || !strings.Contains(err.Error(), "1 bytes into *rafka.PublishRequest") {
		t.Fatalf("decoding garbage: %v", err)
	}
}

// TestErrorsRoundTrip: every typed error survives toStatus on the server
// and fromStatus on the client, with its gRPC code.
func TestErrorsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{&UnknownTopicError{Topic: "orders"}, codes.NotFound},
		{&UnknownPartitionError{Topic: "orders", Partition: 7, Partitions: 6}, codes.OutOfRange},
		{&UnknownConsumerError{ConsumerID: "c-1"}, codes.FailedPrecondition},
		{&InvalidArgumentError{Field: "offset", Value: "-1", Reason: "negative"}, codes.InvalidArgument},
		{&LimitError{What: "consumers", Limit: 10}, codes.ResourceExhausted},
		{&StreamReplacedError{ConsumerID: "c-1"}, codes.Aborted},
		{ErrBridgeClosed, codes.Unavailable},
	} {
		sent := toStatus(tc.err)
		if status.Code(sent) != tc.code || status.Code(tc.err) != tc.code {
			t.Errorf("%v: code %v (sent %v), want %v", tc.err, status.Code(tc.err), status.Code(sent), tc.code)
		}
		if got := fromStatus(sent); !reflect.DeepEqual(got, tc.err) {
			t.Errorf("round trip of %v: %#v", tc.err, got)
		}
	}
	be := fromStatus(toStatus(&BrokerError{Op: "publish", Topic: "t", Err: errors.New("NOT_LEADER")}))
	var got *BrokerError
	if !errors.As(be, &got) || got.Op != "publish" || got.Topic != "t" || got.Err.Error() != "NOT_LEADER" || status.Code(be) != codes.Unavailable {
		t.Fatalf("broker error round trip: %#v", be)
	}
	if s := toStatus(context.DeadlineExceeded); status.Code(s) != codes.DeadlineExceeded {
		t.Fatalf("deadline: %v", s)
	}
	if s := toStatus(errors.New("boom")); status.Code(s) != codes.Internal {
		t.Fatalf("plain error: %v", s)
	}
	plain := status.Error(codes.Unimplemented, "nope")
	if fromStatus(plain) != plain {
		t.Fatal("a status without rafka details must come back unchanged")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Config.Brokers is empty"},
		{Config{Brokers: []string{"nohost"}}, `"nohost" is not host:port`},
		{Config{Brokers: []string{"127.0.0.1:9092"}, MaxBatch: -1}, "Config.MaxBatch is -1"},
	} {
		if _, err := NewBridge(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewBridge(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestCloseEndsStreams: Close ends a running Consume stream with
// ErrBridgeClosed, waits for it, and leaves no goroutine of the bridge
// behind. Everything over TCP on 127.0.0.1, to test the bridge alone.
func TestCloseEndsStreams(t *testing.T) {
	broker, err := kafka.NewBroker(kafka.BrokerConfig{Topics: []string{"t"}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	b, err := NewBridge(Config{Brokers: []string{broker.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	b.RegisterOn(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() { srv.Stop(); <-served }()
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := NewClient(cc)

	reg, err := c.Register(ctx, &RegisterRequest{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Consume(ctx, &ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.Publish(ctx, &PublishRequest{Topic: "t", Value: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil || string(m.Value) != "hello" || m.Partition != pub.Partition || m.Offset != pub.Offset {
		t.Fatalf("Recv = %+v, %v; want hello at %+v", m, err, pub)
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); !errors.Is(err, ErrBridgeClosed) {
		t.Fatalf("Recv after Close: %v, want ErrBridgeClosed", err)
	}
	if _, err := c.GetMetrics(ctx); !errors.Is(err, ErrBridgeClosed) {
		t.Fatalf("GetMetrics after Close: %v, want ErrBridgeClosed", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close waited for every call: no goroutine runs bridge code now.
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "compat/rafka.(*Bridge)") || strings.Contains(g, "compat/rafka.(*member)") {
			t.Fatalf("goroutine left after Close:\n%s", g)
		}
	}
}
