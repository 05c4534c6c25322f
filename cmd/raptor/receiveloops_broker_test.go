//go:build !nobroker

package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/cli/clitest"
)

// TestBrokerReceiveLoops runs `raptor broker --receive-loops 2`: its
// Raptor listener says it has two receive loops, and four franz-go clients
// over Raptor (four sessions, each from its own socket) produce and
// consume through it.
func TestBrokerReceiveLoops(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	bctx, stopBroker := context.WithCancel(ctx)
	var out, errb clitest.Buffer
	addrCh := make(chan string, 1)
	done := make(chan int, 1)
	go func() {
		done <- brokerMain(bctx, []string{"--listen", "127.0.0.1:0", "--topics", "loops-0,loops-1,loops-2,loops-3", "--partitions", "2",
			"--receive-loops", "2"}, &out, &errb, func(a string) { addrCh <- a })
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case code := <-done:
		t.Fatalf("broker exited %d: %s", code, errb.String())
	}
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
	stopBroker()
	if code := <-done; code != 0 {
		t.Fatalf("broker exit %d: %s", code, errb.String())
	}
}

// TestBrokerReceiveLoopsFlag: a --receive-loops out of 1..256 is a usage
// error that names the value.
func TestBrokerReceiveLoopsFlag(t *testing.T) {
	for _, n := range []string{"0", "-3", "257"} {
		var out, errb bytes.Buffer
		want := "raptor broker: --receive-loops " + n + ": want 1 to 256"
		if code := run([]string{"broker", "--receive-loops", n}, &out, &errb); code != 2 || !strings.Contains(errb.String(), want) {
			t.Errorf("--receive-loops %s: exit %d, stderr %q; want 2 and %q", n, code, errb.String(), want)
		}
	}
	if d := flagDefault(t, "broker", "receive-loops"); d != "1" {
		t.Errorf("broker --receive-loops default %q, want 1 (reliable.Config's)", d)
	}
}
