// Command raptor-bench runs Raptor's benchmarks side by side: rtt,
// throughput, kafka and idle over raptor, udp and tcp (plain, behind a
// 64 KiB buffer, and TLS 1.3), over the transports of the main module
// (Kafka over raptor through compat/kafka). The bench/ module's
// raptor-bench-all adds kcp-go, quic-go and the charts (--plot) to the same
// harness (internal/benchkit). It is kept out of the raptor binary (which
// stays small for the edge); `raptor bench` runs it when it is installed
// beside raptor or on PATH.
//
//	go run ./cmd/raptor-bench rtt --transport raptor,tcp,udp
package main

import (
	"io"
	"os"

	"github.com/raptormq/raptor/compat/kafka/kafkabench"
	"github.com/raptormq/raptor/internal/benchkit"
)

func main() {
	os.Exit(runBench(os.Args[1:], os.Stdout, os.Stderr))
}

// runBench runs `raptor-bench <suite> [flags]`.
func runBench(args []string, stdout, stderr io.Writer) int {
	reg := benchkit.Default()
	kafkabench.Register(reg)
	return benchkit.Main("raptor-bench", args, stdout, stderr, reg)
}
