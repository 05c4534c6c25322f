package main

import (
	"io"

	"github.com/raptormq/raptor/internal/benchkit"
)

func init() {
	register("bench", command{
		summary: "benchmarks side by side: rtt, throughput, kafka over raptor, tcp, udp",
		run:     runBench,
	})
}

// runBench runs `raptor bench <suite> [flags]` over the transports of the
// main module (udp, tcp, raptor); the bench/ module's raptor-bench-all adds
// kcp-go and quic-go to the same harness.
func runBench(args []string, stdout, stderr io.Writer) int {
	return benchkit.Main("raptor bench", args, stdout, stderr, benchkit.Default())
}
