package kafkabench

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/benchkit"
)

func TestViaProxyFlag(t *testing.T) {
	reg := benchkit.Default()
	Register(reg)
	cfg, err := benchkit.ParseArgs("bench", []string{"kafka", "--transport", "tcp", "--via", "proxy"}, reg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Transports); n != 2 || cfg.Transports[1].Name() != "tcp-proxy-raptor" {
		t.Fatalf("transports %v; want tcp then tcp-proxy-raptor", cfg.Transports)
	}
	for _, args := range [][]string{{"rtt", "--via", "proxy"}, {"kafka", "--via", "gateway"}} {
		var fe *benchkit.FlagError
		if _, err := benchkit.ParseArgs("bench", args, reg, io.Discard); !errors.As(err, &fe) || fe.Flag != "via" {
			t.Errorf("%v: %v; want a FlagError for --via", args, err)
		}
	}
	for _, n := range reg.Names() {
		if n == "tcp-proxy-raptor" {
			t.Errorf("the proxy path is among the default transports %v", reg.Names())
		}
	}
}

// The Kafka suite through the proxy counts every record once.
func TestKafkaSuiteViaProxy(t *testing.T) {
	o := benchkit.Options{Size: 64, Count: 200, Warmup: 20, Rate: 2000, Duration: 200 * time.Millisecond, MaxMessages: 3000, Timeout: time.Minute}
	rs, err := benchkit.RunKafka(context.Background(), ViaProxy{}, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Sent == 0 || r.Received != r.Sent || r.Duplicated != 0 {
			t.Fatalf("%s: produced %d, consumed %d once, %d duplicated", r.Suite, r.Sent, r.Received, r.Duplicated)
		}
	}
}
