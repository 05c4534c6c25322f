package plugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"

	"github.com/raptormq/raptor/reliable"
)

// MetricsPath is the HTTP path that [ServeMetrics] serves.
const MetricsPath = "/metrics"

// StatsFunc returns the current counters of a Raptor session or endpoint,
// for example (*reliable.Listener).Stats or (*reliable.Session).Stats.
type StatsFunc func() reliable.Stats

// CollectorConfig configures a [Collector]. At least one of Stats and Relay
// must be set.
type CollectorConfig struct {
	// Stats is the source of the raptor_* session metrics, read once per
	// scrape. Default nil: no session metrics. Combine several sources
	// with [SumStats] or [ListenerStats].
	Stats StatsFunc
	// Relay, if set, adds the raptor_relay_* metrics of that relay.
	// Default nil.
	Relay *Relay
	// Labels are constant labels on every metric, for example
	// {"endpoint": "gateway"}, so that several endpoints can share one
	// registry. Default none. "reason" and "direction" are taken.
	Labels prometheus.Labels
}

// LabelError reports a constant label that a [Collector] cannot use.
type LabelError struct {
	Label  string // the label name
	Reason string // why it is refused
}

// Error names the label and the reason.
func (e *LabelError) Error() string {
	return fmt.Sprintf("plugin: metrics label %q: %s", e.Label, e.Reason)
}

// ErrNoMetricsSource is returned by [NewCollector] when neither Stats nor
// Relay is set.
var ErrNoMetricsSource = errors.New("plugin: metrics collector needs a Stats source or a Relay")

// Collector is a prometheus.Collector exposing the counters of a Raptor
// endpoint (every field of [reliable.Stats]) and optionally of a [Relay].
// Counters are named raptor_*_total, drops are one counter raptor_drops_total
// with a reason label; the smoothed RTT, congestion window and bytes in
// flight are gauges. It reads its sources on each scrape and keeps no state,
// so it costs nothing between scrapes. It is safe for concurrent use.
type Collector struct {
	stats StatsFunc
	relay func() RelayStats
	descs []*prometheus.Desc // in the order of statMetrics, then relayMetrics
}

type statMetric struct {
	name, help string
	kind       prometheus.ValueType
	label      string // variable label value, if the metric is a vec
	value      func(*reliable.Stats) float64
}

// statMetrics maps every counter of reliable's counter table and the four
// gauges of reliable.Stats to a metric; the test checks that no field is
// left out. A counter added to the table appears here by itself.
var statMetrics = buildStatMetrics()

func buildStatMetrics() []statMetric {
	var ms []statMetric
	for c := range reliable.NumCounters {
		info := c.Info()
		ms = append(ms, statMetric{
			name: "raptor_" + info.Family + "_total", help: info.Help, label: info.Reason,
			value: func(s *reliable.Stats) float64 { return float64(s.Counters[c]) },
		})
	}
	return append(ms,
		statMetric{name: "raptor_srtt_seconds", help: "Smoothed round-trip time (largest among sessions).", kind: prometheus.GaugeValue, value: func(s *reliable.Stats) float64 { return s.SmoothedRTT.Seconds() }},
		statMetric{name: "raptor_cwnd_bytes", help: "Congestion window (largest among sessions).", kind: prometheus.GaugeValue, value: func(s *reliable.Stats) float64 { return float64(s.CongestionWindow) }},
		statMetric{name: "raptor_bytes_in_flight", help: "Bytes sent and not yet acknowledged or declared lost.", kind: prometheus.GaugeValue, value: func(s *reliable.Stats) float64 { return float64(s.BytesInFlight) }},
		statMetric{name: "raptor_buffer_bytes", help: "Bytes the stream buffers hold, received and written, charged to Config.MaxMemory.", kind: prometheus.GaugeValue, value: func(s *reliable.Stats) float64 { return float64(s.BufferBytes) }},
		statMetric{name: "raptor_datagram_size_bytes", help: "Largest datagram sent now, as datagram size discovery confirmed it (largest among sessions).", kind: prometheus.GaugeValue, value: func(s *reliable.Stats) float64 { return float64(s.DatagramSize) }},
	)
}

type relayMetric struct {
	name, help string
	kind       prometheus.ValueType
	label      string // direction, for raptor_relay_bytes_total
	value      func(*RelayStats) float64
}

var relayMetrics = []relayMetric{
	{name: "raptor_relay_accepted_total", help: "Connections accepted by the relay.", value: func(s *RelayStats) float64 { return float64(s.Accepted) }},
	{name: "raptor_relay_active", help: "Connections being relayed now.", kind: prometheus.GaugeValue, value: func(s *RelayStats) float64 { return float64(s.Active) }},
	{name: "raptor_relay_rejected_total", help: "Connections turned away at the stream limit.", value: func(s *RelayStats) float64 { return float64(s.Rejected) }},
	{name: "raptor_relay_upstream_errors_total", help: "Upstream dials that failed.", value: func(s *RelayStats) float64 { return float64(s.UpstreamErrors) }},
	{name: "raptor_relay_completed_total", help: "Connections that ended on their own.", value: func(s *RelayStats) float64 { return float64(s.Completed) }},
	{name: "raptor_relay_drained_total", help: "Connections closed by a drain between requests.", value: func(s *RelayStats) float64 { return float64(s.Drained) }},
	{name: "raptor_relay_force_closed_total", help: "Connections cut at the drain deadline or at close.", value: func(s *RelayStats) float64 { return float64(s.ForceClosed) }},
	{name: "raptor_relay_refused_total", help: "Connections refused while draining.", value: func(s *RelayStats) float64 { return float64(s.Refused) }},
	{name: "raptor_relay_bytes_total", help: "Bytes relayed, by direction (up: client to upstream).", label: "up", value: func(s *RelayStats) float64 { return float64(s.BytesUp) }},
	{name: "raptor_relay_bytes_total", help: "Bytes relayed, by direction (up: client to upstream).", label: "down", value: func(s *RelayStats) float64 { return float64(s.BytesDown) }},
	{name: "raptor_relay_source_rejected_total", help: "Connections turned away at the per-source or per-session stream limit.", value: func(s *RelayStats) float64 { return float64(s.SourceRejected) }},
	{name: "raptor_relay_idle_closed_total", help: "Connections closed silent before their first bytes or idle too long.", value: func(s *RelayStats) float64 { return float64(s.IdleClosed) }},
	{name: "raptor_relay_upstream_active", help: "Upstream connections open now.", kind: prometheus.GaugeValue, value: func(s *RelayStats) float64 { return float64(s.UpstreamActive) }},
}

// NewCollector returns a collector over cfg's sources. Register it with a
// prometheus.Registry and serve that with [ServeMetrics].
func NewCollector(cfg CollectorConfig) (*Collector, error) {
	if cfg.Stats == nil && cfg.Relay == nil {
		return nil, ErrNoMetricsSource
	}
	for name := range cfg.Labels {
		switch {
		case name == "reason" || name == "direction":
			return nil, &LabelError{Label: name, Reason: "used by the raptor metrics themselves"}
		case !model.LegacyValidation.IsValidLabelName(name) || len(name) >= 2 && name[:2] == "__":
			return nil, &LabelError{Label: name, Reason: "not a valid Prometheus label name"}
		}
	}
	var relay func() RelayStats
	if cfg.Relay != nil {
		relay = cfg.Relay.Stats
	}
	return newCollector(cfg.Stats, relay, cfg.Labels), nil
}

// newCollector builds the collector over already checked sources.
func newCollector(stats StatsFunc, relay func() RelayStats, labels prometheus.Labels) *Collector {
	c := &Collector{stats: stats, relay: relay}
	descs := map[string]*prometheus.Desc{}
	desc := func(name, help, varLabel string) *prometheus.Desc {
		if d, ok := descs[name]; ok {
			return d
		}
		var vl []string
		if varLabel != "" {
			vl = []string{varLabel}
		}
		d := prometheus.NewDesc(name, help, vl, labels)
		descs[name] = d
		return d
	}
	if c.stats != nil {
		for _, m := range statMetrics {
			l := ""
			if m.label != "" {
				l = "reason"
			}
			c.descs = append(c.descs, desc(m.name, m.help, l))
		}
	}
	if c.relay != nil {
		for _, m := range relayMetrics {
			l := ""
			if m.label != "" {
				l = "direction"
			}
			c.descs = append(c.descs, desc(m.name, m.help, l))
		}
	}
	return c
}

// Describe sends the descriptor of every metric (once per name).
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	seen := make(map[*prometheus.Desc]bool, len(c.descs))
	for _, d := range c.descs {
		if !seen[d] { // the entries of a vec share a Desc
			seen[d] = true
			ch <- d
		}
	}
}

// Collect reads the sources once and sends their values.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	i := 0
	if c.stats != nil {
		st := c.stats()
		for _, m := range statMetrics {
			ch <- constMetric(c.descs[i], m.kind, m.value(&st), m.label)
			i++
		}
	}
	if c.relay != nil {
		rs := c.relay()
		for _, m := range relayMetrics {
			ch <- constMetric(c.descs[i], m.kind, m.value(&rs), m.label)
			i++
		}
	}
}

func constMetric(d *prometheus.Desc, kind prometheus.ValueType, v float64, label string) prometheus.Metric {
	if kind == 0 {
		kind = prometheus.CounterValue
	}
	if label != "" {
		return prometheus.MustNewConstMetric(d, kind, v, label)
	}
	return prometheus.MustNewConstMetric(d, kind, v)
}

// SumStats returns a source that adds up srcs as an endpoint sums its
// sessions: counters and bytes in flight are added, the smoothed RTT and the
// congestion window are the largest. Nil sources are skipped.
func SumStats(srcs ...StatsFunc) StatsFunc {
	return func() reliable.Stats {
		var sum reliable.Stats
		for _, src := range srcs {
			if src != nil {
				sum.Add(src())
			}
		}
		return sum
	}
}

// ListenerStats returns the summed counters of the Raptor listeners among
// lns, looking inside a [MultiListener] (such as [Transport.ListenDual]
// returns). Other listeners (TCP) are skipped; ok is false when none was
// Raptor.
func ListenerStats(lns ...net.Listener) (src StatsFunc, ok bool) {
	var srcs []StatsFunc
	var walk func(ln net.Listener)
	walk = func(ln net.Listener) {
		switch l := ln.(type) {
		case *MultiListener:
			for _, in := range l.Listeners() {
				walk(in)
			}
		case interface{ Stats() reliable.Stats }:
			srcs = append(srcs, l.Stats)
		}
	}
	for _, ln := range lns {
		walk(ln)
	}
	return SumStats(srcs...), len(srcs) > 0
}

// ServeMetrics serves reg on http://addr/metrics (addr is "host:port"; bind
// 127.0.0.1 unless the scraper is remote) until stop is called. stop shuts
// the server down gracefully, bounded by ctx, and returns the server's
// error if it failed on its own.
func ServeMetrics(addr string, reg *prometheus.Registry) (stop func(ctx context.Context) error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Endpoint: "http://" + addr + MetricsPath, Err: err}
	}
	return ServeMetricsListener(ln, reg), nil
}

// ServeMetricsListener is [ServeMetrics] on a listener the caller opened
// (to learn the port it picked); it takes ownership of ln.
func ServeMetricsListener(ln net.Listener, reg *prometheus.Registry) (stop func(ctx context.Context) error) {
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var once sync.Once
	var stopErr error
	return func(ctx context.Context) error {
		once.Do(func() {
			stopErr = srv.Shutdown(ctx)
			if stopErr != nil {
				srv.Close() // ctx ended: cut the scrapes still running
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				stopErr = errors.Join(stopErr, fmt.Errorf("plugin: metrics server on %s: %w", ln.Addr(), err))
			}
		})
		return stopErr
	}
}
