package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/raptormq/raptor/plugin"
)

// ServeMetrics implements the --metrics flag of raptor's broker, gateway
// and proxy and of raptor-rafka serve: it serves the Go runtime, process and
// Raptor metrics of this process on http://addr/metrics, labelled
// endpoint=name, and says where on stdout (`raptor stat` reads it). stats
// may be nil (no Raptor listener) and so may relay. addr "" serves nothing.
// ok is false after an error, which it reports on stderr prefixed by prog.
func ServeMetrics(prog, addr, name string, stats plugin.StatsFunc, relay *plugin.Relay, stdout, stderr io.Writer) (stop func(), ok bool) {
	if addr == "" {
		return func() {}, true
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stats != nil || relay != nil {
		c, err := plugin.NewCollector(plugin.CollectorConfig{Stats: stats, Relay: relay, Labels: prometheus.Labels{"endpoint": name}})
		if err != nil {
			fmt.Fprintf(stderr, "%s: --metrics: %v\n", prog, err)
			return nil, false
		}
		reg.MustRegister(c)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: --metrics %s: %v\n", prog, addr, err)
		return nil, false
	}
	fmt.Fprintf(stdout, "%s: metrics on http://%s%s\n", prog, ln.Addr(), plugin.MetricsPath)
	stopServer := plugin.ServeMetricsListener(ln, reg)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := stopServer(ctx); err != nil {
			fmt.Fprintf(stderr, "%s: metrics: %v\n", prog, err)
		}
	}, true
}

// ListenerStats sums the Raptor listeners among lns (nil if none is).
func ListenerStats(lns ...net.Listener) plugin.StatsFunc {
	if src, ok := plugin.ListenerStats(lns...); ok {
		return src
	}
	return nil
}
