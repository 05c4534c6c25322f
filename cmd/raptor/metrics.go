package main

import (
	"flag"
	"net"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/cli"
	"github.com/raptormq/raptor/plugin"
)

// metricsFlag defines the --metrics flag of broker, gateway and proxy,
// served by cli.ServeMetrics; raptor stat reads what it serves.
func metricsFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics", "", "host:port to serve Prometheus metrics on at /metrics, e.g. 127.0.0.1:9464 (default off)")
}

// brokerStats sums the Raptor listeners of b (nil if it has none).
func brokerStats(b *kafka.Broker) plugin.StatsFunc {
	var lns []net.Listener
	for _, ml := range b.Listeners() {
		lns = append(lns, ml)
	}
	return cli.ListenerStats(lns...)
}
