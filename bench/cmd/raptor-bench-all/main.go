// Command raptor-bench-all runs the `raptor bench` suites over every
// transport side by side: raptor, tcp and raw udp from the main module, and
// the peers kcp-go and quic-go. scripts/compare.sh and
// scripts/lossy-bench.sh use it.
//
//	raptor-bench-all rtt --transport raptor,tcp,udp,kcp,quic --size 64,1024
package main

import (
	"os"

	"github.com/raptormq/raptor/bench/peers"
	"github.com/raptormq/raptor/internal/benchkit"
)

func main() {
	reg := benchkit.Default()
	peers.Register(reg)
	os.Exit(benchkit.Main("raptor-bench-all", os.Args[1:], os.Stdout, os.Stderr, reg))
}
