package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raptormq/raptor/internal/cli"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/plugin/kafkarelay"
	"github.com/raptormq/raptor/reliable"
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
	kafka            bool   // --kafka default
	receiveLoops     bool   // has --receive-loops (it listens on Raptor)
}

var gatewaySpec = relaySpec{
	name:         "gateway",
	listen:       "raptor://0.0.0.0:9092",
	upstream:     "tcp://127.0.0.1:9092",
	receiveLoops: true,
	usage: `Usage: raptor gateway [flags]

Accepts Raptor streams and forwards each to a TCP upstream, so Raptor clients
reach a server that cannot link Go (Kafka, Redpanda, Rafka). Give --upstream
more than once (or comma separated) to fail over between upstreams.

With --kafka the gateway fronts a whole Kafka cluster: --upstream is its
bootstrap address, and every broker the cluster's metadata names gets its
own Raptor listener on this host (--broker-ports), which the gateway puts in
the responses instead of the broker's address. A franz-go client with
kafka.NewDialer() then needs only the gateway's address:
  raptor gateway --kafka --listen raptor://0.0.0.0:9092 --upstream tcp://kafka-1:9092 --advertise gw.example

Without --kafka bytes pass unchanged (one gateway per broker, each on its
broker's port number, or any TCP protocol).

The upstream is dialed when a stream's first bytes arrive. A stream the
gateway cannot serve (upstream unreachable, over a stream limit, draining,
idle) is reset with a Raptor error code (0x110 upstream unreachable, 0x111
busy, 0x112 draining, 0x113 idle); nothing is ever written into the stream.
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
// hard ends). ready, if set, gets the relay and its bound listen address.
func relayMain(ctx, hard context.Context, spec relaySpec, args []string, stdout, stderr io.Writer, ready func(*plugin.Relay, string)) int {
	prog := "raptor " + spec.name
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, spec.usage); fs.PrintDefaults() }
	listen := fs.String("listen", spec.listen, "endpoint URL to accept on ("+strings.Join(schemeList(), ", ")+")")
	var upstreams cli.MultiFlag
	fs.Var(&upstreams, "upstream", "endpoint URL to forward to; repeat for failover (default "+spec.upstream+")")
	kafkaAware := fs.Bool("kafka", spec.kafka, "Kafka-aware: rewrite broker addresses so this one relay fronts every broker of the cluster")
	advertise := fs.String("advertise", "", "with --kafka: host clients are told to connect to (default: the listen host, or 127.0.0.1 for 0.0.0.0)")
	brokerPorts := fs.String("broker-ports", "", "with --kafka: port range first-last of the per-broker listeners (default: the 256 ports after the listen port)")
	maxStreams := fs.Int("max-streams", 4096, "concurrent streams; more are refused (busy)")
	perSource := fs.Int("max-streams-per-source", 1024, "concurrent streams from one client IP address")
	perSession := fs.Int("max-streams-per-session", 256, "concurrent streams of one Raptor session")
	dialTimeout := fs.Duration("dial-timeout", 5*time.Second, "timeout of one upstream dial")
	firstByte := fs.Duration("first-byte-timeout", 10*time.Second, "close a stream that sends nothing this long (the upstream is dialed on the first bytes)")
	idle := fs.Duration("idle-timeout", 10*time.Minute, "close a stream that carries nothing either way this long (negative: never)")
	drainTimeout := fs.Duration("drain-timeout", 30*time.Second, "how long a drain may wait before cutting streams")
	framing := fs.String("framing", "kafka", "how drain finds request boundaries: kafka or raw")
	statsEvery := fs.Duration("stats-interval", 0, "log the counters at this interval (0: only at exit)")
	metricsAddr := metricsFlag(fs)
	verbose := fs.Bool("v", false, "log every stream at debug level")
	loops := new(int)
	if spec.receiveLoops {
		loops = receiveLoopsFlag(fs)
	} else {
		*loops = 1
	}
	tlsf := addTLSFlags(fs, true, true)
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if !checkReceiveLoops(prog, *loops, stderr) {
		return 2
	}
	if len(upstreams) == 0 {
		upstreams = cli.MultiFlag{spec.upstream}
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
	if !*kafkaAware && (*advertise != "" || *brokerPorts != "") {
		fmt.Fprintf(stderr, "%s: --advertise and --broker-ports need --kafka\n", prog)
		return 2
	}
	logger := cli.NewLogger(stderr, *verbose)
	raptorCfg, err := tlsf.raptorConfig()
	if err == nil && strings.HasPrefix(*listen, "raptor") {
		err = shareCertificate(raptorCfg) // one certificate for all raptor:// listeners (a Kafka-aware gateway opens one per broker)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	raptorCfg.ReceiveLoops = *loops
	useLocalPin(stdout, prog, tlsf, raptorCfg, upstreams)
	t := plugin.New(plugin.WithLogger(logger), plugin.WithRaptorConfig(raptorCfg))
	defer t.Close()
	rcfg := plugin.RelayConfig{
		Upstreams: upstreams, MaxStreams: *maxStreams, MaxStreamsPerSource: *perSource, MaxStreamsPerSession: *perSession,
		DialTimeout: *dialTimeout, FirstByteTimeout: *firstByte, IdleTimeout: *idle,
		Framing: fr, Transport: t, Logger: logger,
	}
	ep, _ := plugin.ParseEndpoint(*listen)
	var (
		r       *plugin.Relay
		kr      *kafkarelay.Relay
		bound   string
		served  <-chan error
		lnStat  plugin.StatsFunc
		plainLn net.Listener // without --kafka: the one listener
	)
	if *kafkaAware {
		var err error
		kr, err = kafkarelay.New(kafkarelay.Config{
			Listen: *listen, Upstreams: upstreams, Advertise: *advertise, BrokerPorts: *brokerPorts,
			Relay: rcfg, Transport: t, Logger: logger,
		})
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		r, bound, served = kr.Relay(), kr.BoundAddr().String(), kr.Served()
		// The Raptor listeners open now (gateway) plus the sessions the
		// transport dialed (proxy).
		lnStat = func() reliable.Stats {
			st := t.Stats()
			if src, ok := plugin.ListenerStats(kr.Listeners()...); ok {
				st.Add(src())
			}
			return st
		}
	} else {
		var err error
		r, err = plugin.NewRelay(rcfg)
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
		bound = ln.Addr().String()
		plainLn = ln
		ch := make(chan error, 1)
		go func() { ch <- r.Serve(ln) }()
		served = ch
		// The listener's sessions (gateway: Raptor in) plus the sessions
		// the transport dialed (proxy: Raptor out).
		lnStat = plugin.SumStats(cli.ListenerStats(ln), t.Stats)
	}
	stopMetrics, ok := cli.ServeMetrics(prog, *metricsAddr, spec.name, lnStat, r, stdout, stderr)
	if !ok {
		r.Close()
		if kr != nil {
			kr.Close()
		}
		return 1
	}
	defer stopMetrics()
	if kr != nil {
		ports := "ports the system picks"
		if *brokerPorts != "" {
			ports = "ports " + *brokerPorts
		} else if _, p, _ := net.SplitHostPort(ep.Addr); p != "0" {
			n, _ := strconv.Atoi(p)
			ports = fmt.Sprintf("ports %d-%d", n+1, min(n+256, 65535))
		}
		fmt.Fprintf(stdout, "%s: Kafka-aware, bootstrap %s://%s%s (advertised %s) -> %s; one listener per broker on %s as brokers appear (max %d streams); Ctrl-C drains\n",
			prog, ep.Scheme, bound, loopsNote(kr.Listeners()[0]), kr.Addr(), upstreams.String(), ports, *maxStreams)
		printFingerprints(stdout, prog, kr.Listeners()...)
		if removePins, err := writeLocalPins(kr.Listeners()...); err != nil {
			fmt.Fprintf(stderr, "%s: %v (local clients need --pin)\n", prog, err)
		} else {
			defer removePins()
		}
	} else {
		fmt.Fprintf(stdout, "%s: %s://%s%s -> %s (max %d streams, framing %s); Ctrl-C drains\n", prog, ep.Scheme, bound, loopsNote(plainLn), upstreams.String(), *maxStreams, *framing)
		printFingerprints(stdout, prog, plainLn)
		if removePins, err := writeLocalPins(plainLn); err != nil {
			fmt.Fprintf(stderr, "%s: %v (local clients need --pin)\n", prog, err)
		} else {
			defer removePins()
		}
	}
	if ready != nil {
		ready(r, bound)
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
	if kr != nil {
		kr.Close()
	}
	st := r.Stats()
	fmt.Fprintf(stdout, "%s: stopped: %d accepted, %d completed, %d drained, %d cut, %d rejected (busy), %d rejected (per-source/session), %d idle, %d upstream errors, %d B up, %d B down\n",
		prog, st.Accepted, st.Completed, st.Drained, st.ForceClosed, st.Rejected, st.SourceRejected, st.IdleClosed, st.UpstreamErrors, st.BytesUp, st.BytesDown)
	return code
}

func logRelayStats(l *slog.Logger, r *plugin.Relay) {
	st := r.Stats()
	l.Info("relay counters", "accepted", st.Accepted, "active", st.Active, "completed", st.Completed,
		"rejected", st.Rejected, "source_rejected", st.SourceRejected, "idle_closed", st.IdleClosed,
		"upstream_errors", st.UpstreamErrors, "upstream_active", st.UpstreamActive, "bytes_up", st.BytesUp, "bytes_down", st.BytesDown)
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

// maxReceiveLoops is the largest --receive-loops reliable.Config accepts.
const maxReceiveLoops = 256

// receiveLoopsFlag adds --receive-loops to the flags of a command that
// listens on Raptor (broker, gateway).
func receiveLoopsFlag(fs *flag.FlagSet) *int {
	return fs.Int("receive-loops", 1, "sockets each raptor:// listener opens on its port with SO_REUSEPORT (Linux), one receive loop each, "+
		"so sessions spread over that many cores (the kernel keeps each client on one; reliable.Config.ReceiveLoops; raptor+dpdk:// has one)")
}

// checkReceiveLoops reports on stderr, as the command prog, a
// --receive-loops out of range; false means exit 2.
func checkReceiveLoops(prog string, n int, stderr io.Writer) bool {
	if n < 1 || n > maxReceiveLoops {
		fmt.Fprintf(stderr, "%s: --receive-loops %d: want 1 to %d\n", prog, n, maxReceiveLoops)
		return false
	}
	return true
}

// loopsNote is " (N receive loops)" for a Raptor listener with more than
// one, read from the listener itself, and "" otherwise.
func loopsNote(ln net.Listener) string {
	if l, ok := ln.(*reliable.Listener); ok {
		if n := len(l.SessionsPerLoop()); n > 1 {
			return fmt.Sprintf(" (%d receive loops)", n)
		}
	}
	return ""
}
