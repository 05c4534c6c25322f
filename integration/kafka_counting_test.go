package integration

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The workload's counting reports a duplicate in the log (produced again
// after the last record, so only the drain sees it) and a record that never
// arrives, each on its own.
func TestKxWorkloadReportsInjectedFaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         kxFaults
		lost, dup int
	}{
		{"none", kxFaults{Drop: -1, Dup: -1}, 0, 0},
		{"late duplicate", kxFaults{Drop: -1, Dup: 5}, 0, 1},
		{"lost record", kxFaults{Drop: 123, Dup: -1}, 1, 0},
		{"one of each", kxFaults{Drop: 123, Dup: 5}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "count"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f := tc.f
			const n = 400
			r := kxWorkload{Seed: c.ListenAddrs()[0], Topic: "count", Partitions: 2, N: n, Stall: 3 * time.Second, Faults: &f}.run(t, ctx)
			if r.Lost != tc.lost || r.Duplicates != tc.dup || r.Received != n-tc.lost || r.ProduceErrors != 0 {
				t.Fatalf("received %d, %d lost, %d duplicates, %d produce errors; want %d, %d, %d, 0",
					r.Received, r.Lost, r.Duplicates, r.ProduceErrors, n-tc.lost, tc.lost, tc.dup)
			}
		})
	}
}
