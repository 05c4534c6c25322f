package kafkabench

import (
	"context"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/benchkit"
)

// The Kafka suite over Raptor through compat/kafka counts every record once,
// for raptor and raptor-plaintext alike: both run it through compat/kafka,
// with packet protection the only difference.
func TestKafkaSuiteOverCompatKafka(t *testing.T) {
	reg := benchkit.Default()
	Register(reg)
	for _, tc := range []struct {
		name      string
		plaintext bool
	}{{"raptor", false}, {"raptor-plaintext", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := reg.Lookup([]string{tc.name})
			if err != nil {
				t.Fatal(err)
			}
			tr, ok := ts[0].(Raptor)
			if !ok {
				t.Fatalf("registered %s is %T, want kafkabench.Raptor", tc.name, ts[0])
			}
			if got := tr.Config != nil && tr.Config.InsecurePlaintext; got != tc.plaintext || tr.Name() != tc.name {
				t.Fatalf("%s: name %q, InsecurePlaintext %v, want %v", tc.name, tr.Name(), got, tc.plaintext)
			}
			if got := tr.DialConfig().InsecurePlaintext; got != tc.plaintext {
				t.Fatalf("%s: dial side InsecurePlaintext %v, want %v", tc.name, got, tc.plaintext)
			}
			defer tr.Close()
			o := benchkit.Options{Size: 64, Count: 200, Warmup: 20, Rate: 2000, Duration: 200 * time.Millisecond, MaxMessages: 3000, Timeout: time.Minute}
			rs, err := benchkit.RunKafka(context.Background(), tr, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 2 || rs[0].Sent != 200 {
				t.Fatalf("results %+v", rs)
			}
			for _, r := range rs {
				if r.Sent == 0 || r.Received != r.Sent || r.LossPct != 0 || r.Duplicated != 0 || r.P50us <= 0 {
					t.Fatalf("%s: produced %d, consumed %d once, loss %.2f%%, %d duplicated, p50 %.0f µs", r.Suite, r.Sent, r.Received, r.LossPct, r.Duplicated, r.P50us)
				}
			}
		})
	}
}
