package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/raptormq/raptor/plugin"
)

func init() {
	register("gateway", command{
		summary: "Raptor in, TCP out: put Raptor in front of Kafka, Redpanda or any TCP server",
		run: func(args []string, stdout, stderr io.Writer) int {
			return runRelayCommand(gatewaySpec, args, stdout, stderr)
		},
	})
}

// relaySpec describes one relay command (gateway or proxy).
type relaySpec struct {
	name, usage      string
	listen, upstream string // flag defaults
}

var gatewaySpec = relaySpec{
	name:     "gateway",
	listen:   "raptor://0.0.0.0:9092",
	upstream: "tcp://127.0.0.1:9092",
	usage: `Usage: raptor gateway [flags]

Accepts Raptor streams and forwards each to a TCP upstream, so Raptor clients
reach a server that cannot link Go (Kafka, Redpanda, Rafka). Give --upstream
more than once (or comma separated) to fail over between upstreams.

Example, in front of a Kafka broker on this host:
  raptor gateway --listen raptor://0.0.0.0:9092 --upstream tcp://127.0.0.1:9092

A client stream whose upstream cannot be reached gets one line,
  RAPTOR-ERR upstream-unreachable <upstream>: <cause>
and is closed; other streams are unaffected. Over --max-streams a stream gets
  RAPTOR-ERR busy max-streams=<n>
On SIGINT/SIGTERM the relay drains: it stops accepting, closes each stream
between requests (Kafka framing) or when idle (raw), and cuts what is left at
--drain-timeout. A second signal stops at once.

Flags:
`,
}

func runRelayCommand(spec relaySpec, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A second signal after the first skips the drain.
	hard, stopHard := context.WithCancel(context.Background())
	defer stopHard()
	go func() {
		<-ctx.Done()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(sig)
		select {
		case <-sig:
			stopHard()
		case <-hard.Done():
		}
	}()
	return relayMain(ctx, hard, spec, args, stdout, stderr, nil)
}

// relayMain runs a relay until ctx ends, then drains it (cut short when
// hard ends). ready, if set, gets the relay and its listen address.
func relayMain(ctx, hard context.Context, spec relaySpec, args []string, stdout, stderr io.Writer, ready func(*plugin.Relay, string)) int {
	prog := "raptor " + spec.name
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, spec.usage); fs.PrintDefaults() }
	listen := fs.String("listen", spec.listen, "endpoint URL to accept on ("+strings.Join(schemeList(), ", ")+")")
	var upstreams multiFlag
	fs.Var(&upstreams, "upstream", "endpoint URL to forward to; repeat for failover (default "+spec.upstream+")")
	maxStreams := fs.Int("max-streams", 4096, "concurrent streams; more are turned away with a busy line")
	dialTimeout := fs.Duration("dial-timeout", 5*time.Second, "timeout of one upstream dial")
	drainTimeout := fs.Duration("drain-timeout", 30*time.Second, "how long a drain may wait before cutting streams")
	framing := fs.String("framing", "kafka", "how drain finds request boundaries: kafka or raw")
	statsEvery := fs.Duration("stats-interval", 0, "log the counters at this interval (0: only at exit)")
	metricsAddr := metricsFlag(fs)
	verbose := fs.Bool("v", false, "log every stream at debug level")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if len(upstreams) == 0 {
		upstreams = multiFlag{spec.upstream}
	}
	var fr plugin.Framing
	switch *framing {
	case "kafka":
		fr = plugin.FramingKafka
	case "raw":
		fr = plugin.FramingRaw
	default:
		fmt.Fprintf(stderr, "%s: --framing %q: want kafka or raw\n", prog, *framing)
		return 2
	}
	for _, u := range append([]string{*listen}, upstreams...) {
		if _, err := plugin.ParseEndpoint(u); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 2
		}
	}
	logger := newLogger(stderr, *verbose)
	t := plugin.New(plugin.WithLogger(logger))
	defer t.Close()
	r, err := plugin.NewRelay(plugin.RelayConfig{
		Upstreams: upstreams, MaxStreams: *maxStreams, DialTimeout: *dialTimeout,
		Framing: fr, Transport: t, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	ln, err := t.Listen(*listen)
	if err != nil {
		r.Close()
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	// The listener's sessions (gateway: Raptor in) plus the sessions the
	// transport dialed (proxy: Raptor out).
	stopMetrics, ok := serveMetrics(prog, *metricsAddr, spec.name, plugin.SumStats(listenerStats(ln), t.Stats), r, stdout, stderr)
	if !ok {
		ln.Close()
		r.Close()
		return 1
	}
	defer stopMetrics()
	ep, _ := plugin.ParseEndpoint(*listen)
	addr := ln.Addr().String()
	fmt.Fprintf(stdout, "%s: %s://%s -> %s (max %d streams, framing %s); Ctrl-C drains\n", prog, ep.Scheme, addr, upstreams.String(), *maxStreams, *framing)
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln) }()
	if ready != nil {
		ready(r, addr)
	}
	var tick <-chan time.Time
	if *statsEvery > 0 {
		tk := time.NewTicker(*statsEvery)
		defer tk.Stop()
		tick = tk.C
	}
	code := 0
loop:
	for {
		select {
		case <-tick:
			logRelayStats(logger, r)
		case err := <-served:
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			code = 1
			break loop
		case <-ctx.Done():
			fmt.Fprintf(stdout, "%s: draining (up to %v; signal again to stop at once)\n", prog, *drainTimeout)
			dctx, cancel := context.WithTimeout(hard, *drainTimeout)
			if err := r.Shutdown(dctx); err != nil {
				fmt.Fprintf(stdout, "%s: drain cut short: %v\n", prog, err)
			}
			cancel()
			<-served
			break loop
		}
	}
	r.Close()
	st := r.Stats()
	fmt.Fprintf(stdout, "%s: stopped: %d accepted, %d completed, %d drained, %d cut, %d rejected (busy), %d upstream errors, %d B up, %d B down\n",
		prog, st.Accepted, st.Completed, st.Drained, st.ForceClosed, st.Rejected, st.UpstreamErrors, st.BytesUp, st.BytesDown)
	return code
}

func logRelayStats(l *slog.Logger, r *plugin.Relay) {
	st := r.Stats()
	l.Info("relay counters", "accepted", st.Accepted, "active", st.Active, "completed", st.Completed,
		"rejected", st.Rejected, "upstream_errors", st.UpstreamErrors, "bytes_up", st.BytesUp, "bytes_down", st.BytesDown)
	if fo := r.Failover(); fo != nil {
		for _, s := range fo.Status() {
			l.Info("upstream", "endpoint", s.Endpoint, "breaker", s.State, "active", s.Active, "failures", s.Failures)
		}
	}
}

func schemeList() []string {
	out := make([]string, len(plugin.AcceptedSchemes))
	for i, s := range plugin.AcceptedSchemes {
		out[i] = s + "://"
	}
	return out
}
