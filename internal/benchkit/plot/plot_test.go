package plot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/raptormq/raptor/internal/benchkit"
)

func TestWriteDrawsEverySuite(t *testing.T) {
	rs := []benchkit.Result{
		{Suite: benchkit.SuiteRTT, Transport: "tcp", Size: 64, P50us: 10, P90us: 12, P99us: 20, P999us: 40, MaxUs: 300, MsgsPerS: 9e4},
		{Suite: benchkit.SuiteRTT, Transport: "raptor", Size: 1024, Reply: 64, P50us: 12, P90us: 15, P99us: 25, P999us: 50, MaxUs: 209000},
		{Suite: benchkit.SuiteThroughput, Transport: "tcp-buffered", Size: 64, MsgsPerS: 6e5, MBPerS: 38, CPUSPerMMsg: 1.5},
		{Suite: benchkit.SuiteKafkaMax, Transport: "tcp", Size: 64, P50us: 100, P99us: 200, MaxUs: 500, MsgsPerS: 1e5},
	}
	for _, tc := range []struct {
		name string
		rs   []benchkit.Result
	}{{"latency and throughput", rs}} { // one chart: drawing is slow under -race
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "chart.png")
			if err := Write(path, "test", tc.rs); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 1000 {
				t.Fatalf("%s: not a PNG chart (%d bytes, %v)", path, len(b), err)
			}
		})
	}
	if err := Write(filepath.Join(t.TempDir(), "none.png"), "test", nil); err == nil {
		t.Fatal("Write of no results succeeded")
	}
}

// Register makes a registry's --plot draw charts.
func TestRegister(t *testing.T) {
	reg := benchkit.Default()
	Register(reg)
	path := filepath.Join(t.TempDir(), "r.png")
	if _, err := benchkit.ParseArgs("b", []string{"rtt", "--plot", path}, reg, &bytes.Buffer{}); err != nil {
		t.Fatalf("--plot with a plotter: %v", err)
	}
}
