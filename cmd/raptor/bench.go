//go:build !edge

package main

import (
	"io"

	"github.com/raptormq/raptor/compat/kafka/kafkabench"
	"github.com/raptormq/raptor/internal/benchkit"
)

func init() {
	register("bench", command{
		summary: "benchmarks side by side: rtt, throughput, kafka, idle over raptor, tcp (plain, buffered, TLS), udp",
		run:     runBench,
	})
}

// runBench runs `raptor bench <suite> [flags]` over the transports of the
// main module (udp, tcp, tcp-buffered, tcp+tls, raptor; Kafka over raptor
// through compat/kafka); the bench/ module's raptor-bench-all adds kcp-go,
// quic-go and the charts (--plot) to the same harness.
func runBench(args []string, stdout, stderr io.Writer) int {
	reg := benchkit.Default()
	kafkabench.Register(reg)
	return benchkit.Main("raptor bench", args, stdout, stderr, reg)
}
