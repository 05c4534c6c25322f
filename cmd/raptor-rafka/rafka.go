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
	"time"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/compat/rafka"
	"github.com/raptormq/raptor/internal/cli"
	"github.com/raptormq/raptor/plugin"
)

const rafkaUsage = `Usage: raptor-rafka serve [flags]

Serves Rafka's gRPC interface (package rafka, service BrokerService, plain
protobuf) on one port number over TCP and Raptor (UDP), and stores into a
Kafka-protocol cluster: an embedded broker by default (franz-go's kfake, also
on TCP and Raptor at --kafka-listen), or --brokers. Rafka's clients dial
http://<listen> unchanged; Go clients can dial it over Raptor. Publish is an
idempotent Kafka produce, Consume a live push stream, Acknowledge and
UpdateOffset commit the consumer's Kafka group offsets (docs/RAFKA.md).
Stop it with Ctrl-C (SIGINT) or SIGTERM.

Flags:
`

func runRafka(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return rafkaServeMain(context.Background(), []string{"-h"}, stdout, stderr, nil) // usage and flags
	}
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprint(stderr, rafkaUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return rafkaServeMain(ctx, args[1:], stdout, stderr, nil)
}

// rafkaServeMain runs `raptor-rafka serve` until ctx ends; ready, if set,
// gets the server once it serves.
func rafkaServeMain(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(*rafka.Server)) int {
	const prog = "raptor-rafka serve"
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rafkaUsage); fs.PrintDefaults() }
	listen := fs.String("listen", "127.0.0.1:50051", "host:port of the Rafka service, TCP and Raptor (UDP); port 0 picks one")
	var brokers cli.MultiFlag
	fs.Var(&brokers, "brokers", "Kafka seed brokers host:port, comma separated or repeated (default: an embedded broker)")
	kafkaOver := fs.String("kafka-over", "tcp", "how the bridge reaches the Kafka brokers: tcp, or raptor (through raptor gateways or Raptor brokers)")
	kafkaListen := fs.String("kafka-listen", "127.0.0.1:9092", "host:port of the embedded broker, TCP and Raptor (ignored with --brokers)")
	data := fs.String("data", "", "data directory of the embedded broker (default: in memory)")
	partitions := fs.Int("partitions", 1, "partitions of the topics the bridge creates (-1: the broker's default); one partition keeps Rafka's total order")
	createTopics := fs.Bool("create-topics", true, "create a topic on its first Publish, Subscribe or Consume, as Rafka does")
	metricsAddr := fs.String("metrics", "", "host:port to serve Prometheus metrics of the Raptor listener on at /metrics (default off)")
	grace := fs.Duration("grace", 5*time.Second, "how long stopping waits for calls before cutting connections")
	verbose := fs.Bool("v", false, "log at debug level")
	if code, ok := cli.ParseFlags(fs, args); !ok {
		return code
	}
	if *partitions == 0 || *partitions < -1 {
		fmt.Fprintf(stderr, "%s: --partitions %d: want a positive count or -1\n", prog, *partitions)
		return 2
	}
	logger := cli.NewLogger(stderr, *verbose)
	t := plugin.New(plugin.WithLogger(logger))
	defer t.Close()
	bcfg := rafka.Config{CreateTopics: *createTopics, TopicPartitions: int32(*partitions)}
	switch *kafkaOver {
	case "tcp":
	case "raptor":
		bcfg.Dial = t.DialContext
	default:
		fmt.Fprintf(stderr, "%s: --kafka-over %q: want tcp or raptor\n", prog, *kafkaOver)
		return 2
	}
	embedded := kafka.BrokerConfig{Addr: *kafkaListen, DataDir: *data, Partitions: max(*partitions, 0), AutoCreateTopics: *createTopics}
	s, err := rafka.NewServer(rafka.ServerConfig{
		Addr: *listen, Brokers: brokers, Embedded: embedded, Bridge: bcfg, Transport: t, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	store := fmt.Sprintf("Kafka cluster %s over %s", strings.Join(s.KafkaBrokers(), ","), *kafkaOver)
	if s.Broker() != nil {
		where := "in memory"
		if *data != "" {
			where = "data in " + *data
		}
		store = fmt.Sprintf("embedded Kafka broker on tcp://%s and raptor://%s (%s)", s.Broker().Addr(), s.Broker().Addr(), where)
	}
	fmt.Fprintf(stdout, "%s: Rafka BrokerService on tcp://%s and raptor://%s, stored in the %s; Ctrl-C stops\n", prog, s.Addr(), s.Addr(), store)
	stopMetrics, ok := cli.ServeMetrics(prog, *metricsAddr, "rafka", cli.ListenerStats(net.Listener(s.Listener())), nil, stdout, stderr)
	if !ok {
		s.Close(*grace)
		return 1
	}
	defer stopMetrics()
	if ready != nil {
		ready(s)
	}
	code := 0
	select {
	case <-ctx.Done():
	case err := <-s.Served():
		fmt.Fprintf(stderr, "%s: serve: %v\n", prog, err)
		code = 1
	}
	fmt.Fprintf(stdout, "%s: stopping\n", prog)
	if err := s.Close(*grace); err != nil {
		fmt.Fprintf(stderr, "%s: close: %v\n", prog, err)
		code = 1
	}
	st := s.Bridge().Stats()
	fmt.Fprintf(stdout, "%s: stopped: %d published, %d delivered, %d acknowledged, %d offset updates, %d streams, %d failed calls\n",
		prog, st.Published, st.Delivered, st.Acknowledged, st.OffsetUpdates, st.StreamsOpened, st.Failed)
	return code
}
