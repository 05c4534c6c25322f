package main

import "flag"

// metricsFlag defines the --metrics flag of broker, gateway and proxy,
// served by cli.ServeMetrics; raptor stat reads what it serves.
func metricsFlag(fs *flag.FlagSet) *string {
	return fs.String("metrics", "", "host:port to serve Prometheus metrics on at /metrics, e.g. 127.0.0.1:9464 (default off)")
}
