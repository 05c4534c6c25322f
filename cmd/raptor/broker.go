//go:build !nobroker

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/cli"
	"github.com/raptormq/raptor/plugin"
)

func init() {
	register("broker", command{
		summary: "embedded Kafka-protocol broker serving TCP and Raptor on one port",
		run:     runBroker,
	})
}

const brokerUsage = `Usage: raptor broker [flags]

Runs the embedded Kafka-protocol cluster (franz-go's kfake): --brokers nodes,
node i with TCP and Raptor (UDP) listening on the listen port + i. Kafka
clients connect as usual over TCP; franz-go clients with the Raptor dialer
(compat/kafka) connect over Raptor; any other client (kcat, Java, Python)
reaches it over Raptor through 'raptor proxy', whose defaults fit these:
  raptor broker --brokers 3 &
  raptor proxy &
  kcat -b 127.0.0.1:9092 -L

Topics: --topics orders:12,events creates them at start (12 partitions, and
--partitions for events); with --auto-create (the default) producing to or
asking metadata for an unknown topic creates it with --partitions
partitions. Partition leaders are spread over the brokers at random.
Stop it with Ctrl-C (SIGINT) or SIGTERM; with --data the state is saved on
the way out and reloaded on the next start.

Flags:
`

func runBroker(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return brokerMain(ctx, args, stdout, stderr, nil)
}

// brokerMain runs the broker until ctx ends; ready, if set, gets the
// broker's address once it serves.
func brokerMain(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) int {
	fs := flag.NewFlagSet("raptor broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, brokerUsage); fs.PrintDefaults() }
	listen := fs.String("listen", "127.0.0.1:19092", "host:port of the first broker, TCP and Raptor (UDP); broker i on port+i; port 0 picks ports")
	brokers := fs.Int("brokers", 1, "number of brokers (node IDs 0..N-1)")
	advertise := fs.String("advertise", "", "host or host:port announced to clients; with a port, broker i announces port+i (default: the listen host, or 127.0.0.1 for 0.0.0.0, and the bound port)")
	data := fs.String("data", "", "data directory for persistence (default: in memory)")
	partitions := fs.Int("partitions", 6, "partitions of topics created without a count")
	topics := fs.String("topics", "", "topics to create at start, comma separated, each name or name:partitions")
	autoCreate := fs.Bool("auto-create", true, "let clients create topics by producing to them")
	var extra cli.MultiFlag
	fs.Var(&extra, "extra-listen", "another endpoint URL to serve Kafka on, e.g. raptor+dpdk://10.0.0.1:9092?dev=...; repeatable")
	metricsAddr := metricsFlag(fs)
	verbose := fs.Bool("v", false, "log at debug level")
	loops := receiveLoopsFlag(fs)
	tlsf := addTLSFlags(fs, true, false)
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if !checkReceiveLoops("raptor broker", *loops, stderr) {
		return 2
	}
	if *partitions <= 0 {
		fmt.Fprintf(stderr, "raptor broker: --partitions %d must be positive\n", *partitions)
		return 2
	}
	if *brokers <= 0 || *brokers > 64 {
		fmt.Fprintf(stderr, "raptor broker: --brokers %d: want 1 to 64\n", *brokers)
		return 2
	}
	logger := cli.NewLogger(stderr, *verbose)
	var ts []string
	for _, t := range strings.Split(*topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			ts = append(ts, t)
		}
	}
	rcfg, err := tlsf.raptorConfig()
	if err == nil {
		err = shareCertificate(rcfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "raptor broker: %v\n", err)
		return 2
	}
	rcfg.ReceiveLoops = *loops
	t := plugin.New(plugin.WithLogger(logger), plugin.WithRaptorConfig(rcfg))
	defer t.Close()
	var lns []net.Listener
	for _, u := range extra {
		ln, err := t.Listen(u)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			fmt.Fprintf(stderr, "raptor broker: --extra-listen: %v\n", err)
			return 1
		}
		lns = append(lns, ln)
	}
	b, err := kafka.NewBroker(kafka.BrokerConfig{
		Addr: *listen, Brokers: *brokers, Advertise: *advertise, DataDir: *data, Partitions: *partitions,
		Topics: ts, AutoCreateTopics: *autoCreate, Logger: logger, Transport: t, Listeners: lns,
	})
	if err != nil {
		fmt.Fprintf(stderr, "raptor broker: %v\n", err)
		return 1
	}
	store := "in memory"
	if *data != "" {
		store = "data in " + *data
	}
	for i, ml := range b.Listeners() {
		lns := ml.Listeners()
		fmt.Fprintf(stdout, "raptor broker: node %d bound on tcp://%s and raptor://%s%s, advertised as %s\n", i, lns[0].Addr(), lns[1].Addr(), loopsNote(lns[1]), b.Addrs()[i])
	}
	fmt.Fprintf(stdout, "raptor broker: serving Kafka, %d broker(s) (%s); Ctrl-C stops\n", len(b.Listeners()), store)
	for i, u := range extra {
		fmt.Fprintf(stdout, "raptor broker: also on %s, bound to %s (clients map %s to it)\n", u, lns[i].Addr(), b.Addr())
	}
	for _, ml := range b.Listeners() {
		printFingerprints(stdout, "raptor broker", ml)
		removePins, err := writeLocalPins(ml)
		if err != nil {
			fmt.Fprintf(stderr, "raptor broker: %v (local clients need --pin)\n", err)
		}
		defer removePins()
	}
	stopMetrics, ok := cli.ServeMetrics("raptor broker", *metricsAddr, "broker", brokerStats(b), nil, stdout, stderr)
	if !ok {
		b.Close()
		return 1
	}
	defer stopMetrics()
	if ready != nil {
		ready(b.Addr())
	}
	<-ctx.Done()
	fmt.Fprintln(stdout, "raptor broker: stopping")
	if err := b.Close(); err != nil {
		fmt.Fprintf(stderr, "raptor broker: close: %v\n", err)
		return 1
	}
	return 0
}

// brokerStats sums the Raptor listeners of b (nil if it has none).
func brokerStats(b *kafka.Broker) plugin.StatsFunc {
	var lns []net.Listener
	for _, ml := range b.Listeners() {
		lns = append(lns, ml)
	}
	return cli.ListenerStats(lns...)
}
