package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/plugin"
)

// startBroker runs `raptor broker` with args in process and returns its
// address, its output and a stop function that checks its exit status.
func startBroker(t *testing.T, ctx context.Context, args ...string) (addr string, out *lockedBuffer, stop func()) {
	t.Helper()
	bctx, cancel := context.WithCancel(ctx)
	out = &lockedBuffer{}
	var errb lockedBuffer
	addrCh := make(chan string, 1)
	done := make(chan int, 1)
	go func() { done <- brokerMain(bctx, args, out, &errb, func(a string) { addrCh <- a }) }()
	select {
	case addr = <-addrCh:
	case code := <-done:
		cancel()
		t.Fatalf("broker %v exited %d: %s", args, code, errb.String())
	}
	return addr, out, func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("broker exit %d: %s", code, errb.String())
		}
	}
}

// TestBrokerReceiveLoops runs `raptor broker --receive-loops 2`: its
// Raptor listener says it has two receive loops, and four franz-go clients
// over Raptor (four sessions, each from its own socket) produce and
// consume through it.
func TestBrokerReceiveLoops(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	addr, out, stop := startBroker(t, ctx, "--listen", "127.0.0.1:0", "--topics", "loops-0,loops-1,loops-2,loops-3", "--partitions", "2", "--receive-loops", "2")
	if want := "raptor://" + addr + " (2 receive loops)"; !strings.Contains(out.String(), want) {
		t.Fatalf("broker output lacks %q:\n%s", want, out.String())
	}
	for i := 0; i < 4; i++ {
		d, err := kafka.NewDialer()
		if err != nil {
			t.Fatal(err)
		}
		topic := fmt.Sprintf("loops-%d", i) // each client consumes only its own records
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), d.Opt(), kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic))
		if err != nil {
			d.Close()
			t.Fatal(err)
		}
		produceConsume(t, ctx, cl, 50*(i+1), "over two loops")
		cl.Close()
		d.Close()
	}
	stop()
}

// TestGatewayReceiveLoops runs `raptor gateway --receive-loops 2` in front
// of a broker's TCP port; a franz-go client over Raptor produces and
// consumes through it.
func TestGatewayReceiveLoops(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	brokerAddr, _, stopBroker := startBroker(t, ctx, "--listen", "127.0.0.1:0", "--topics", "gw", "--partitions", "2")
	defer stopBroker()
	_, port, _ := net.SplitHostPort(brokerAddr)
	listen := "raptor://127.0.0.2:" + port // the broker's Raptor listener holds 127.0.0.1's UDP port
	gctx, stopGateway := context.WithCancel(ctx)
	var gout, gerr lockedBuffer
	gready := make(chan *plugin.Relay, 1)
	gdone := make(chan int, 1)
	go func() {
		gdone <- relayMain(gctx, ctx, gatewaySpec, []string{"--listen", listen, "--upstream", "tcp://" + brokerAddr, "--receive-loops", "2"}, &gout, &gerr,
			func(r *plugin.Relay, _ string) { gready <- r })
	}()
	var relay *plugin.Relay
	select {
	case relay = <-gready:
	case code := <-gdone:
		t.Fatalf("gateway exited %d: %s", code, gerr.String())
	}
	if want := "raptor gateway: " + listen + " (2 receive loops) -> tcp://" + brokerAddr; !strings.Contains(gout.String(), want) {
		t.Fatalf("gateway output lacks %q:\n%s", want, gout.String())
	}
	d, err := kafka.NewDialer(kafka.WithBrokerMap(map[string]string{brokerAddr: listen}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), d.Opt(), kgo.DefaultProduceTopic("gw"), kgo.ConsumeTopics("gw"))
	if err != nil {
		t.Fatal(err)
	}
	produceConsume(t, ctx, cl, 100, "via a gateway with two loops")
	cl.Close()
	if st := relay.Stats(); st.Accepted == 0 || st.BytesUp == 0 {
		t.Fatalf("nothing went through the gateway: %+v", st)
	}
	stopGateway()
	if code := <-gdone; code != 0 {
		t.Fatalf("gateway exit %d: %s", code, gerr.String())
	}
}

// TestReceiveLoopsFlag: a --receive-loops out of 1..256 is a usage error
// that names the value, on both commands; the proxy has no such flag.
func TestReceiveLoopsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"broker", "--receive-loops", "0"}, "raptor broker: --receive-loops 0: want 1 to 256"},
		{[]string{"broker", "--receive-loops", "-3"}, "raptor broker: --receive-loops -3: want 1 to 256"},
		{[]string{"broker", "--receive-loops", "257"}, "raptor broker: --receive-loops 257: want 1 to 256"},
		{[]string{"gateway", "--receive-loops", "0"}, "raptor gateway: --receive-loops 0: want 1 to 256"},
		{[]string{"gateway", "--receive-loops", "1000"}, "raptor gateway: --receive-loops 1000: want 1 to 256"},
		{[]string{"proxy", "--receive-loops", "2"}, "flag provided but not defined: -receive-loops"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
	if d := brokerFlagDefaultInt(t, "broker", "receive-loops"); d != "1" {
		t.Errorf("broker --receive-loops default %q, want 1 (reliable.Config's)", d)
	}
}

// brokerFlagDefaultInt returns the default of a numeric flag of command
// cmd, read from its -h output.
func brokerFlagDefaultInt(t *testing.T, cmd, name string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{cmd, "-h"}, &out, &errb); code != 0 {
		t.Fatalf("%s -h: exit %d", cmd, code)
	}
	lines := strings.Split(errb.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "-"+name+" ") {
			for _, d := range lines[i:min(i+4, len(lines))] {
				if j := strings.Index(d, "(default "); j >= 0 {
					return strings.TrimSuffix(d[j+len("(default "):], ")")
				}
			}
		}
	}
	t.Fatalf("no default for -%s in:\n%s", name, errb.String())
	return ""
}
