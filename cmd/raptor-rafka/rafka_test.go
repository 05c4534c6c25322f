package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/compat/rafka"
	"github.com/raptormq/raptor/compat/rafka/rafkapb"
	"github.com/raptormq/raptor/internal/cli/clitest"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// TestRafkaServe runs `raptor-rafka serve` in process on free ports, with
// its embedded broker and with --brokers reached over Raptor, and a client
// generated from rafka.proto publishes over TCP and over Raptor to one port
// number and consumes both messages.
func TestRafkaServe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  func(t *testing.T) []string
		store string
	}{
		{"embedded", func(*testing.T) []string { return []string{"--kafka-listen", "127.0.0.1:0", "--partitions", "2"} }, "embedded Kafka broker"},
		{"brokers over raptor", func(t *testing.T) []string {
			b, err := kafka.NewBroker(kafka.BrokerConfig{AutoCreateTopics: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				// The bridge reached the broker over Raptor: its Raptor listener opened streams.
				src, ok := plugin.ListenerStats(b.Listeners()[0])
				if !ok {
					t.Fatal("the broker has no Raptor listener")
				}
				st := src()
				if n := st.Get(reliable.CounterStreamsOpened); n == 0 {
					t.Errorf("the broker's Raptor listener opened no streams: --kafka-over raptor did not use Raptor")
				}
				b.Close()
			})
			return []string{"--brokers", b.Addr(), "--kafka-over", "raptor", "--partitions", "-1"}
		}, "over raptor"},
	} {
		t.Run(tc.name, func(t *testing.T) { rafkaServeOnce(t, tc.args(t), tc.store) })
	}
}

func rafkaServeOnce(t *testing.T, args []string, store string) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errb clitest.Buffer
	ready := make(chan *rafka.Server, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- rafkaServeMain(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), &out, &errb, func(s *rafka.Server) { ready <- s })
	}()
	var s *rafka.Server
	select {
	case s = <-ready:
	case code := <-exit:
		t.Fatalf("exit %d before serving\n%s\n%s", code, out.String(), errb.String())
	case <-time.After(30 * time.Second):
		t.Fatal("not serving after 30s")
	}
	tr := plugin.New()
	defer tr.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	clients := map[string]rafkapb.BrokerServiceClient{}
	for name, opts := range map[string][]grpc.DialOption{
		"tcp": nil,
		"raptor": {grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return tr.Dial(ctx, "raptor://"+a)
		})},
	} {
		cc, err := grpc.NewClient("passthrough:///"+s.Addr(), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		clients[name] = rafkapb.NewBrokerServiceClient(cc)
	}
	st, err := clients["raptor"].Consume(cctx, &rafkapb.ConsumeRequest{Id: "cli", Topic: "cli-topic"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Header(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for name, c := range clients {
		r, err := c.Publish(cctx, &rafkapb.PublishRequest{Topic: "cli-topic", Payload: "over " + name})
		if err != nil || !r.GetSuccess() {
			t.Fatalf("Publish over %s: %v %v", name, r, err)
		}
		want["over "+name] = true
	}
	for len(want) > 0 {
		m, err := st.Recv()
		if err != nil || !want[m.GetPayload()] {
			t.Fatalf("Recv: %v %v, want one of %v", m, err, want)
		}
		delete(want, m.GetPayload())
	}
	stop()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, w := range []string{"Rafka BrokerService on tcp://" + s.Addr() + " and raptor://" + s.Addr(), store, "stopped: 2 published, 2 delivered"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, out.String())
		}
	}
}

func TestRafkaUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{
		{nil, 2},
		{[]string{"help"}, 0},
		{[]string{"publish"}, 2},
		{[]string{"serve", "--partitions", "0"}, 2},
		{[]string{"serve", "--kafka-over", "udp"}, 2},
		{[]string{"serve", "extra"}, 2},
	} {
		var out, errb bytes.Buffer
		if code := runRafka(tc.args, &out, &errb); code != tc.code {
			t.Errorf("raptor-rafka %v: exit %d, want %d\n%s", tc.args, code, tc.code, errb.String())
		}
		if len(tc.args) == 1 && tc.args[0] == "help" && !strings.Contains(errb.String(), "-kafka-over") {
			t.Errorf("raptor-rafka help does not list the flags:\n%s", errb.String())
		}
	}
}
