package peers

import (
	"context"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/benchkit"
)

// The harness counts every message over the peers too: what the receiver
// counted equals what was sent, and every round trip comes back.
func TestHarnessCountsPeers(t *testing.T) {
	for _, tr := range []benchkit.Transport{KCP{}, &QUIC{}} {
		t.Run(tr.Name(), func(t *testing.T) {
			o := benchkit.Options{Size: 64, Count: 200, Warmup: 10, MaxMessages: 5000,
				Duration: 2 * time.Minute, Timeout: 2 * time.Minute}
			r, err := benchkit.RunThroughput(context.Background(), tr, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Sent != 5000 || r.Received != r.Sent {
				t.Fatalf("throughput sent %d, received %d; want 5000 each", r.Sent, r.Received)
			}
			o.Size, o.Reply = 1024, 1024
			r, err = benchkit.RunRTT(context.Background(), tr, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Received != 200 || r.LossPct != 0 {
				t.Fatalf("rtt received %d loss %.2f; want 200, 0", r.Received, r.LossPct)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	r := benchkit.Default()
	Register(r)
	if _, err := r.Lookup([]string{"kcp", "quic", "tcp", "udp"}); err != nil {
		t.Fatal(err)
	}
}
