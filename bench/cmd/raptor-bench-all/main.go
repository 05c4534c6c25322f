// Command raptor-bench-all runs the `raptor bench` suites over every
// transport side by side: raptor, tcp and raw udp from the main module, and
// the peers kcp-go and quic-go, with charts (--plot). scripts/compare.sh and
// scripts/lossy-bench.sh use it.
//
//	raptor-bench-all rtt --transport raptor,tcp,udp,kcp,quic --size 64,1024
package main

import (
	"os"

	"github.com/raptormq/raptor/bench/peers"
	"github.com/raptormq/raptor/compat/kafka/kafkabench"
	"github.com/raptormq/raptor/internal/benchkit"
	"github.com/raptormq/raptor/internal/benchkit/plot"
)

func main() {
	reg := benchkit.Default()
	kafkabench.Register(reg)
	kafkabench.RegisterNewReno(reg)
	plot.Register(reg)
	peers.Register(reg)
	os.Exit(benchkit.Main("raptor-bench-all", os.Args[1:], os.Stdout, os.Stderr, reg))
}
