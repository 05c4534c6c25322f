//go:build !nobroker

package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/cli/clitest"
	"github.com/raptormq/raptor/plugin"
)

// TestDefaultsFitTogether: `raptor proxy` with no flags forwards to where
// `raptor broker` with no flags listens, and neither binds the other's
// port.
func TestDefaultsFitTogether(t *testing.T) {
	fs := brokerFlagDefault(t, "listen")
	if want := "raptor://" + fs; proxySpec.upstream != want {
		t.Fatalf("proxy default upstream %s, broker default listen %s", proxySpec.upstream, fs)
	}
	if strings.TrimPrefix(proxySpec.listen, "tcp://") == fs {
		t.Fatalf("proxy and broker both default to %s", fs)
	}
	if !proxySpec.kafka || gatewaySpec.kafka {
		t.Fatalf("proxy Kafka-aware %v, gateway %v; want the proxy Kafka-aware by default", proxySpec.kafka, gatewaySpec.kafka)
	}
}

func TestBrokerCommandBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--partitions", "0"}, "raptor broker: --partitions 0 must be positive"},
		{[]string{"--brokers", "0"}, "raptor broker: --brokers 0: want 1 to 64"},
		{[]string{"--brokers", "65"}, "raptor broker: --brokers 65: want 1 to 64"},
		{[]string{"--listen", "127.0.0.1:0", "stray"}, `raptor broker: unexpected argument "stray"`},
	} {
		var out, errb bytes.Buffer
		if code := run(append([]string{"broker"}, tc.args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// brokerFlagDefault returns the default of one `raptor broker` flag, read
// from its -h output.
func brokerFlagDefault(t *testing.T, name string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{"broker", "-h"}, &out, &errb); code != 0 {
		t.Fatalf("broker -h: exit %d", code)
	}
	lines := strings.Split(errb.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "-"+name+" ") && i+1 < len(lines) {
			d := lines[i+1]
			if j := strings.Index(d, `(default "`); j >= 0 {
				return strings.TrimSuffix(d[j+len(`(default "`):], `")`)
			}
		}
	}
	t.Fatalf("no default for -%s in:\n%s", name, errb.String())
	return ""
}

// TestThreeBrokersBehindOneProxyCommand runs `raptor broker --brokers 3`
// and `raptor proxy` in process; a plain TCP franz-go client given only
// the proxy's address produces and consumes, and the start lines name
// the bound and advertised addresses.
func TestThreeBrokersBehindOneProxyCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	b := startBroker(t, ctx, "--listen", "127.0.0.1:0", "--brokers", "3", "--topics", "three:6")
	brokerAddr, bout := b.addr, &b.out
	pctx, stopProxy := context.WithCancel(ctx)
	var pout, perr clitest.Buffer
	pready := make(chan string, 1)
	pdone := make(chan int, 1)
	go func() {
		pdone <- relayMain(pctx, ctx, proxySpec, []string{"--listen", "tcp://127.0.0.1:0", "--upstream", "raptor://" + brokerAddr}, &pout, &perr,
			func(_ *plugin.Relay, addr string) { pready <- addr })
	}()
	var proxyAddr string
	select {
	case proxyAddr = <-pready:
	case code := <-pdone:
		t.Fatalf("proxy exited %d: %s", code, perr.String())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(proxyAddr), kgo.DefaultProduceTopic("three"), kgo.ConsumeTopics("three"))
	if err != nil {
		t.Fatal(err)
	}
	produceConsume(t, ctx, cl, 300, "via proxy")
	cl.Close()
	stopProxy()
	if code := <-pdone; code != 0 {
		t.Fatalf("proxy exit %d: %s", code, perr.String())
	}
	b.stop(t)
	_, pport, _ := net.SplitHostPort(proxyAddr)
	for _, want := range []string{"Kafka-aware, bootstrap tcp://127.0.0.1:" + pport + " (advertised 127.0.0.1:" + pport + ")", "stopped:"} {
		if !strings.Contains(pout.String(), want) {
			t.Errorf("proxy output lacks %q:\n%s", want, pout.String())
		}
	}
	if n := strings.Count(perr.String(), "kafkarelay: serving broker"); n != 3 {
		t.Errorf("proxy opened %d broker listeners, want 3:\n%s", n, perr.String())
	}
	for i := 0; i < 3; i++ {
		if !strings.Contains(bout.String(), "node "+strconv.Itoa(i)+" bound on tcp://127.0.0.1:") {
			t.Errorf("broker output lacks node %d:\n%s", i, bout.String())
		}
	}
}

// TestKafkaGatewayCommand runs `raptor gateway --kafka` in front of a
// 3-broker TCP-only cluster: a franz-go client with the Raptor dialer,
// given only the gateway's address, produces and consumes, and the
// gateway's metrics count the streams of every broker listener.
func TestKafkaGatewayCommand(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "gwcmd"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	gctx, stopGateway := context.WithCancel(ctx)
	var gout, gerr clitest.Buffer
	gready := make(chan *plugin.Relay, 1)
	gdone := make(chan int, 1)
	var gwAddr string
	go func() {
		gdone <- relayMain(gctx, ctx, gatewaySpec, []string{"--kafka", "--listen", "raptor://127.0.0.1:0", "--upstream", "tcp://" + c.ListenAddrs()[0], "--metrics", "127.0.0.1:0"}, &gout, &gerr,
			func(r *plugin.Relay, addr string) { gwAddr = addr; gready <- r })
	}()
	var relay *plugin.Relay
	select {
	case relay = <-gready:
	case code := <-gdone:
		t.Fatalf("gateway exited %d: %s", code, gerr.String())
	}
	d, err := kafka.NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(gwAddr), d.Opt(), kgo.DefaultProduceTopic("gwcmd"), kgo.ConsumeTopics("gwcmd"))
	if err != nil {
		t.Fatal(err)
	}
	produceConsume(t, ctx, cl, 300, "via kafka gateway")
	code, out, errOut := runStatTest(t, "--url", metricsURL(t, &gout), "--count", "1", "--json")
	cl.Close()
	if code != 0 {
		t.Fatalf("stat: exit %d: %s", code, errOut)
	}
	s := decodeSamples(t, out)[0]
	st := relay.Stats()
	if s.Counters["relay_accepted"] < 3 || s.Counters["streams_opened"] < 3 || s.Counters["stream_bytes_received"] == 0 {
		t.Errorf("gateway sample %+v; relay %+v", s, st)
	}
	stopGateway()
	if code := <-gdone; code != 0 {
		t.Fatalf("gateway exit %d: %s", code, gerr.String())
	}
	if n := strings.Count(gerr.String(), "kafkarelay: serving broker"); n != 3 {
		t.Errorf("gateway opened %d broker listeners, want 3:\n%s", n, gerr.String())
	}
}

// TestBrokerGatewayCommands runs `raptor broker` and `raptor gateway` in
// process, produces and consumes through the gateway over Raptor, then
// stops both as a signal would.
func TestBrokerGatewayCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	b := startBroker(t, ctx, "--listen", "127.0.0.1:0", "--topics", "cmd", "--partitions", "2")
	brokerAddr, bout := b.addr, &b.out
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
	b.stop(t)
	for _, want := range []string{"raptor gateway: raptor://127.0.0.2:" + port + " -> tcp://" + brokerAddr, "draining", "stopped:"} {
		if !strings.Contains(gout.String(), want) {
			t.Errorf("gateway output lacks %q:\n%s", want, gout.String())
		}
	}
	if !strings.Contains(bout.String(), "raptor://"+brokerAddr) {
		t.Errorf("broker output: %s", bout.String())
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

func TestBrokerMetricsFlag(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	bctx, stop := context.WithCancel(ctx)
	var out, errOut clitest.Buffer
	ready := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- brokerMain(bctx, []string{"--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"}, &out, &errOut, func(a string) { ready <- a })
	}()
	var addr string
	select {
	case addr = <-ready:
	case code := <-done:
		t.Fatalf("broker exited %d: %s", code, errOut.String())
	}
	tr := plugin.New()
	defer tr.Close()
	c, err := tr.Dial(ctx, "raptor://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	code, sout, serr := runStatTest(t, "--url", metricsURL(t, &out), "--count", "1", "--json")
	if code != 0 {
		t.Fatalf("stat: exit %d: %s", code, serr)
	}
	s := decodeSamples(t, sout)[0]
	// Handshake packets are not in packets_received (reliable counts
	// short-header packets only), so an idle new session shows as opened.
	if s.Counters["sessions_opened"] != 1 || len(s.Endpoints) != 1 || s.Endpoints[0] != "broker" {
		t.Errorf("broker sample %+v", s)
	}
	if _, ok := s.Counters["relay_accepted"]; ok {
		t.Errorf("broker exports relay counters: %v", s.Counters)
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("broker exited %d: %s", code, errOut.String())
	}
}

// inProcessBroker is `raptor broker` running in process (startBroker).
type inProcessBroker struct {
	addr     string // the address it printed as bound
	out, err clitest.Buffer
	cancel   context.CancelFunc
	done     chan int
}

// startBroker runs `raptor broker args...` in process and waits for its
// address; stop ends it as a signal would and checks its exit status.
func startBroker(t *testing.T, ctx context.Context, args ...string) *inProcessBroker {
	t.Helper()
	bctx, cancel := context.WithCancel(ctx)
	b := &inProcessBroker{cancel: cancel, done: make(chan int, 1)}
	addrCh := make(chan string, 1)
	go func() { b.done <- brokerMain(bctx, args, &b.out, &b.err, func(a string) { addrCh <- a }) }()
	select {
	case b.addr = <-addrCh:
	case code := <-b.done:
		cancel()
		t.Fatalf("broker exited %d: %s", code, b.err.String())
	}
	return b
}

func (b *inProcessBroker) stop(t *testing.T) {
	t.Helper()
	b.cancel()
	if code := <-b.done; code != 0 {
		t.Fatalf("broker exit %d: %s", code, b.err.String())
	}
}
