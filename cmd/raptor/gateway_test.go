package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/cli/clitest"
	"github.com/raptormq/raptor/plugin"
)

// TestBrokerGatewayCommands runs `raptor broker` and `raptor gateway` in
// process, produces and consumes through the gateway over Raptor, then
// stops both as a signal would.
func TestBrokerGatewayCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	bctx, stopBroker := context.WithCancel(ctx)
	var bout, berr clitest.Buffer
	addrCh := make(chan string, 1)
	bdone := make(chan int, 1)
	go func() {
		bdone <- brokerMain(bctx, []string{"--listen", "127.0.0.1:0", "--topics", "cmd", "--partitions", "2"}, &bout, &berr, func(a string) { addrCh <- a })
	}()
	var brokerAddr string
	select {
	case brokerAddr = <-addrCh:
	case code := <-bdone:
		t.Fatalf("broker exited %d: %s", code, berr.String())
	}
	// The gateway listens on Raptor at the broker's port number, so the
	// Raptor dialer's default mapping (same host and port over UDP) works.
	// The broker's own Raptor listener holds that UDP port, so use a
	// second loopback address for the gateway.
	_, port, _ := net.SplitHostPort(brokerAddr)
	gctx, stopGateway := context.WithCancel(ctx)
	var gout, gerr clitest.Buffer
	gready := make(chan *plugin.Relay, 1)
	gdone := make(chan int, 1)
	go func() {
		gdone <- relayMain(gctx, ctx, gatewaySpec, []string{"--listen", "raptor://127.0.0.2:" + port, "--upstream", "tcp://" + brokerAddr}, &gout, &gerr,
			func(r *plugin.Relay, _ string) { gready <- r })
	}()
	var relay *plugin.Relay
	select {
	case relay = <-gready:
	case code := <-gdone:
		t.Fatalf("gateway exited %d: %s", code, gerr.String())
	}
	d, err := kafka.NewDialer(kafka.WithBrokerMap(map[string]string{brokerAddr: "raptor://127.0.0.2:" + port}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), d.Opt(), kgo.DefaultProduceTopic("cmd"), kgo.ConsumeTopics("cmd"))
	if err != nil {
		t.Fatal(err)
	}
	produceConsume(t, ctx, cl, 100, "via gateway")
	cl.Close()
	if st := relay.Stats(); st.Accepted == 0 || st.BytesUp == 0 {
		t.Fatalf("nothing went through the gateway: %+v", st)
	}
	stopGateway()
	if code := <-gdone; code != 0 {
		t.Fatalf("gateway exit %d: %s", code, gerr.String())
	}
	stopBroker()
	if code := <-bdone; code != 0 {
		t.Fatalf("broker exit %d: %s", code, berr.String())
	}
	for _, want := range []string{"raptor gateway: raptor://127.0.0.2:" + port + " -> tcp://" + brokerAddr, "draining", "stopped:"} {
		if !strings.Contains(gout.String(), want) {
			t.Errorf("gateway output lacks %q:\n%s", want, gout.String())
		}
	}
	if !strings.Contains(bout.String(), "raptor://"+brokerAddr) {
		t.Errorf("broker output: %s", bout.String())
	}
}

func TestRelayCommandBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"gateway", "--listen", "udp://0.0.0.0:9092"},
		{"proxy", "--upstream", "quic://h:1"},
		{"gateway", "--upstream", "127.0.0.1:9092"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "accepted schemes: tcp://, raptor://, raptor+dpdk://") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"gateway", "--framing", "http"}, &out, &errb); code != 2 {
		t.Errorf("bad framing: exit %d", code)
	}
	if code := run([]string{"broker", "--partitions", "0"}, &out, &errb); code != 2 {
		t.Errorf("bad partitions: exit %d", code)
	}
	if code := run([]string{"proxy", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "Accepts TCP connections") {
		t.Errorf("proxy -h: exit %d", code)
	}
}

// produceConsume produces n records of value through cl and consumes them
// back (cl consumes the topic it produces to), failing unless exactly n
// arrive before ctx ends.
func produceConsume(t *testing.T, ctx context.Context, cl *kgo.Client, n int, value string) {
	t.Helper()
	for i := 0; i < n; i++ {
		cl.Produce(ctx, kgo.StringRecord(value), nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush %d records: %v", n, err)
	}
	got := 0
	for got < n && ctx.Err() == nil {
		got += len(cl.PollFetches(ctx).Records())
	}
	if got != n {
		t.Fatalf("consumed %d of %d", got, n)
	}
}
