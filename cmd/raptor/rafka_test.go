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

	"github.com/raptormq/raptor/compat/rafka"
	"github.com/raptormq/raptor/compat/rafka/rafkapb"
	"github.com/raptormq/raptor/plugin"
)

// TestRafkaServe runs `raptor rafka serve` in process on free ports, and a
// client generated from rafka.proto publishes over TCP and over Raptor to
// one port number and consumes both messages.
func TestRafkaServe(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out, errb syncBuffer
	ready := make(chan *rafka.Server, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- rafkaServeMain(ctx, []string{"--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--partitions", "2"}, &out, &errb, func(s *rafka.Server) { ready <- s })
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
	for range want {
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
	for _, w := range []string{"Rafka BrokerService on tcp://" + s.Addr() + " and raptor://" + s.Addr(), "embedded Kafka broker", "stopped: 2 published, 2 delivered"} {
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
		if code := run(append([]string{"rafka"}, tc.args...), &out, &errb); code != tc.code {
			t.Errorf("raptor rafka %v: exit %d, want %d\n%s", tc.args, code, tc.code, errb.String())
		}
	}
}
