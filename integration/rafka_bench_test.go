package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/raptormq/raptor/compat/rafka/rafkapb"
)

// BenchmarkRafkaPublish measures Publish latency (request sent to answer
// received) through `raptor rafka serve` (embedded broker, one partition):
// 100-byte payloads at a steady 1,000 publishes a second, alternating
// between a client over TCP and one over Raptor to the same port number,
// so both see the same machine at the same time. Each op is one publish
// on each. docs/BENCHMARKS.md, "Rafka Publish", has one run:
//
//	go test -run '^$' -bench BenchmarkRafkaPublish -benchtime 5000x ./integration/
func BenchmarkRafkaPublish(b *testing.B) {
	const rate = 500 // ticks a second, two publishes each
	s := rafkaServe(b, 1)
	transports := []string{"tcp", "raptor"}
	clients := map[string]rafkapb.BrokerServiceClient{}
	hists := map[string]*hdrhistogram.Histogram{}
	for _, tr := range transports {
		clients[tr] = rafkaDial(b, s.Addr(), tr)
		hists[tr] = hdrhistogram.New(1, int64(10*time.Second/time.Microsecond), 3)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	payload := strings.Repeat("r", 100)
	publish := func(tr string, i int) time.Duration {
		t0 := time.Now()
		r, err := clients[tr].Publish(ctx, &rafkapb.PublishRequest{Topic: "bench", Key: "k", Payload: payload})
		if err != nil || !r.GetSuccess() {
			b.Fatalf("Publish %d over %s: %v %v", i, tr, r, err)
		}
		return time.Since(t0)
	}
	for i := range 200 { // warm up: topic creation, connections, the Raptor session
		for _, tr := range transports {
			publish(tr, i)
		}
	}
	interval := time.Second / rate
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing to the steady rate, not synchronisation
		}
		first := i % 2 // alternate which transport goes first
		for k := range transports {
			tr := transports[(k+first)%2]
			_ = hists[tr].RecordValue(publish(tr, i).Microseconds())
		}
	}
	b.StopTimer()
	for _, tr := range transports {
		h := hists[tr]
		for _, q := range []float64{50, 99, 99.9} {
			b.ReportMetric(float64(h.ValueAtQuantile(q)), fmt.Sprintf("%s-p%v-µs", tr, q))
		}
	}
}
