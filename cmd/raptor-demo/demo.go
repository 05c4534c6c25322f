package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/benchkit"
	"github.com/raptormq/raptor/internal/impair"
	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

const demoUsage = `Usage: raptor-demo [flags]

Starts an embedded Kafka-protocol broker that listens with TCP and Raptor on
one port, then for each path produces --messages records with franz-go and
consumes them with a consumer group, and prints records/s, MB/s, end-to-end
latency (produce call to consumer receipt) and records lost and duplicated,
counted apart by the sequence number each record carries; after the last new
record the consumer drains 300ms more to catch late duplicates. At most
--window records are in flight on every path alike. --loss drops packets on
both paths when it can (root: two network namespaces and nftables) and says
when it can drop Raptor's datagrams only.

Exit status: 0 when every record arrived exactly once on every path, 1 when
any was lost or duplicated (or a produce failed), 2 on bad flags.

Flags:
`

// demoConfig is the parsed command line of raptor-demo.
type demoConfig struct {
	messages   int
	size       int
	partitions int
	loss       float64 // percent
	lossMode   string  // auto, netns, inprocess
	seed       int64
	rate       int
	paths      []string
	stall      time.Duration
	window     int // records buffered in the producer (produced, not yet acknowledged) at most
	jsonOut    bool
	progress   bool
	verbose    bool
	brokers    int // embedded brokers (issue #11; flag plumbing only)

	faults *demoFaults // tests only
}

// demoFaults injects faults into the demo's producer, so that tests see the
// counting report them: record drop is counted as produced and never sent;
// record dup is produced once more after the last one. -1 is none.
type demoFaults struct{ drop, dup int }

func runDemo(args []string, stdout, stderr io.Writer) int {
	var cfg demoConfig
	fs := flag.NewFlagSet("raptor-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	fs.IntVar(&cfg.messages, "messages", 100_000, "records to produce and consume on each path")
	fs.IntVar(&cfg.size, "size", 100, "bytes per record value (at least 16)")
	fs.IntVar(&cfg.partitions, "partitions", 6, "partitions of each demo topic")
	fs.Float64Var(&cfg.loss, "loss", 0, "percent of packets dropped in each direction (0-50); see --loss-mode")
	fs.StringVar(&cfg.lossMode, "loss-mode", "auto", "how --loss is applied: netns (TCP and Raptor through one lossy veth link between two network namespaces, nftables; needs root, ip and nft), inprocess (Raptor's datagrams only, dropped in-process with --seed), auto (netns when it can, else inprocess, saying so)")
	fs.Int64Var(&cfg.seed, "seed", 0, "seed of the loss pattern (0: from the clock)")
	fs.IntVar(&cfg.rate, "rate", 0, "records per second to produce (0: as fast as the producer goes)")
	fs.IntVar(&cfg.window, "window", defaultDemoWindow, "records in flight (produced, not yet acknowledged) at most, the same on every path; bounds the producer's queueing")
	pathList := fs.String("paths", "tcp,raptor", "paths to run, comma separated: tcp, raptor")
	fs.DurationVar(&cfg.stall, "stall", 30*time.Second, "give up on a path when no record arrives for this long")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the results as one JSON object instead of a table")
	noProgress := fs.Bool("no-progress", false, "do not draw the progress bar on stderr")
	fs.BoolVar(&cfg.verbose, "v", false, "log broker and transport events to stderr")
	fs.IntVar(&cfg.brokers, "brokers", 1, "embedded brokers (1 to 64); partition leaders are spread over them")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "raptor-demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.progress = !*noProgress
	for _, p := range strings.Split(*pathList, ",") {
		p = strings.TrimSpace(strings.ToLower(p))
		if p != "tcp" && p != "raptor" {
			fmt.Fprintf(stderr, "raptor-demo: unknown path %q in --paths (want tcp, raptor)\n", p)
			return 2
		}
		cfg.paths = append(cfg.paths, p)
	}
	switch {
	case cfg.messages <= 0:
		fmt.Fprintf(stderr, "raptor-demo: --messages %d must be positive\n", cfg.messages)
		return 2
	case cfg.size < 16 || cfg.size > 1<<20:
		fmt.Fprintf(stderr, "raptor-demo: --size %d must be from 16 to 1048576 bytes\n", cfg.size)
		return 2
	case cfg.partitions <= 0 || cfg.partitions > 1000:
		fmt.Fprintf(stderr, "raptor-demo: --partitions %d must be from 1 to 1000\n", cfg.partitions)
		return 2
	case !(cfg.loss >= 0 && cfg.loss <= 50):
		fmt.Fprintf(stderr, "raptor-demo: --loss %v must be a percentage from 0 to 50\n", cfg.loss)
		return 2
	case cfg.window < 1 || cfg.window > 1_000_000:
		fmt.Fprintf(stderr, "raptor-demo: --window %d must be from 1 to 1000000 records\n", cfg.window)
		return 2
	case cfg.lossMode != "auto" && cfg.lossMode != lossNetns && cfg.lossMode != lossInProcess:
		fmt.Fprintf(stderr, "raptor-demo: --loss-mode %q: want auto, netns or inprocess\n", cfg.lossMode)
		return 2
	case cfg.rate < 0:
		fmt.Fprintf(stderr, "raptor-demo: --rate %d must not be negative\n", cfg.rate)
		return 2
	case cfg.brokers < 1 || cfg.brokers > 64:
		fmt.Fprintf(stderr, "raptor-demo: --brokers %d must be from 1 to 64\n", cfg.brokers)
		return 2
	}
	if cfg.seed == 0 {
		cfg.seed = time.Now().UnixNano()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := runDemoPaths(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "raptor-demo: %v\n", err)
		return 1
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printDemoTable(stdout, rep)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// demoReport is the JSON output of raptor-demo.
type demoReport struct {
	Messages   int          `json:"messages"`
	Size       int          `json:"size_bytes"`
	Partitions int          `json:"partitions"`
	LossPct    float64      `json:"loss_pct"`
	Seed       int64        `json:"seed"`
	Rate       int          `json:"rate"`
	Window     int          `json:"window"`
	LossMode   string       `json:"loss_mode,omitempty"` // netns (both paths) or inprocess (Raptor only)
	LossNote   string       `json:"loss_note,omitempty"` // why the loss could not be applied to both paths
	Broker     string       `json:"broker"`
	Results    []demoResult `json:"results"`
	OK         bool         `json:"ok"`
}

// demoResult is one path's outcome.
type demoResult struct {
	Transport     string        `json:"transport"`
	Produced      int           `json:"produced"`
	Received      int           `json:"received"`
	Lost          int           `json:"lost"`
	Duplicated    int           `json:"duplicated"`
	Foreign       int           `json:"foreign,omitempty"`
	ProduceErrors int           `json:"produce_errors"`
	FirstError    string        `json:"first_error,omitempty"`
	ElapsedMs     float64       `json:"elapsed_ms"`
	RecordsPerSec float64       `json:"records_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"`
	LatencyUs     demoLatencies `json:"latency_us"`
	// PacketsDropped is what the loss dropped on this path: nftables' count
	// in netns mode (TCP segments or Raptor datagrams), the in-process
	// dropper's otherwise (Raptor only).
	PacketsDropped uint64 `json:"packets_dropped,omitempty"`
	// Raptor path only: datagrams sent by both ends, and dropped.
	DatagramsSent    uint64 `json:"datagrams_sent,omitempty"`
	DatagramsDropped uint64 `json:"datagrams_dropped,omitempty"`
	// Retransmits sums both ends: on Raptor the broker's listener and the
	// client dialer's sessions (producer and consumer); on TCP in netns mode
	// the kernel's RetransSegs of both namespaces.
	Retransmits       uint64 `json:"retransmits,omitempty"`
	RetransmitsBroker uint64 `json:"retransmits_broker,omitempty"`
	RetransmitsClient uint64 `json:"retransmits_client,omitempty"`
}

// defaultDemoWindow bounds the producer's queue: franz-go's default (10,000
// records) turns a full-speed run's latency into queueing time.
const defaultDemoWindow = 1000

type demoLatencies struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// lossTap opens impaired kernel UDP packet conns and remembers them for
// their counters.
type lossTap struct {
	pct  float64
	seed atomic.Int64
	mu   sync.Mutex
	cs   []*impair.Conn
}

func (l *lossTap) open(laddr string) (reliable.PacketConn, error) {
	c, err := udpio.Listen(laddr)
	if err != nil {
		return nil, err
	}
	ic := impair.Wrap(c, impair.Config{Seed: l.seed.Add(1), SendLoss: l.pct / 100})
	l.mu.Lock()
	l.cs = append(l.cs, ic)
	l.mu.Unlock()
	return ic, nil
}

func (l *lossTap) stats() (sent, dropped uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.cs {
		s := c.Stats()
		sent += s.Sent + s.SendLost
		dropped += s.SendLost
	}
	return sent, dropped
}

func runDemoPaths(ctx context.Context, cfg demoConfig, stderr io.Writer) (*demoReport, error) {
	logger := slog.New(slog.DiscardHandler)
	if cfg.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rep := &demoReport{Messages: cfg.messages, Size: cfg.size, Partitions: cfg.partitions, LossPct: cfg.loss, Seed: cfg.seed, Rate: cfg.rate, Window: cfg.window, OK: true}
	var (
		tap                    *lossTap
		nl                     *netnsLoss
		brokerOpts, clientOpts []plugin.Option
		tcpOpts                []kgo.Opt
		brokerAddr             string
	)
	if cfg.loss > 0 {
		why := lossNetnsUnavailable()
		mode := cfg.lossMode
		if mode == "auto" {
			mode = lossNetns
			if why != "" {
				mode = lossInProcess
				rep.LossNote = "cannot apply the loss to both paths: " + why + "; TCP ran loss-free"
			}
		}
		rep.LossMode = mode
		switch mode {
		case lossNetns:
			if why != "" {
				return nil, fmt.Errorf("--loss-mode netns: %s", why)
			}
			var err error
			if nl, err = newNetnsLoss(cfg.loss); err != nil {
				return nil, fmt.Errorf("lossy link between network namespaces: %w", err)
			}
			defer nl.close()
			brokerAddr = net.JoinHostPort(nl.brokerIP, "0")
			clientOpts = append(clientOpts, plugin.WithPacketConn(func(laddr string) (reliable.PacketConn, error) {
				var pc reliable.PacketConn
				err := nl.in(1, func() (err error) { pc, err = udpio.Listen(laddr); return err })
				return pc, err
			}))
			tcpOpts = append(tcpOpts, kgo.Dialer(nl.dial))
		default:
			tap = &lossTap{pct: cfg.loss}
			tap.seed.Store(cfg.seed)
			brokerOpts = append(brokerOpts, plugin.WithPacketConn(tap.open))
			clientOpts = append(clientOpts, plugin.WithPacketConn(tap.open))
		}
	}
	topics := make([]string, len(cfg.paths))
	for i, p := range cfg.paths {
		topics[i] = "raptor-demo-" + p
	}
	bcfg := kafka.BrokerConfig{Addr: brokerAddr, Partitions: cfg.partitions, Topics: topics, TransportOptions: brokerOpts, Logger: logger,
		Brokers: cfg.brokers}
	var b *kafka.Broker
	var err error
	if nl != nil {
		err = nl.in(0, func() (err error) { b, err = kafka.NewBroker(bcfg); return err })
	} else {
		b, err = kafka.NewBroker(bcfg)
	}
	if err != nil {
		return nil, err
	}
	defer b.Close()
	rep.Broker = b.Addr()
	bar := newDemoBar(stderr, cfg.progress)
	for i, path := range cfg.paths {
		opts := tcpOpts
		var d *kafka.Dialer
		if path == "raptor" {
			d, err = kafka.NewDialer(kafka.WithTransportOptions(clientOpts...), kafka.WithLogger(logger))
			if err != nil {
				return nil, err
			}
			opts = []kgo.Opt{d.Opt()}
		}
		var before demoCounters
		if before, err = readDemoCounters(b, nl); err != nil {
			return nil, err
		}
		res := runDemoPath(ctx, cfg, b.Addr(), topics[i], path, opts, bar)
		var client reliable.Stats
		if d != nil {
			client = d.Transport().Stats()
			d.Close()
		}
		after, err := readDemoCounters(b, nl)
		if err != nil {
			return nil, err
		}
		if path == "raptor" {
			res.RetransmitsBroker = after.brokerRetransmits - before.brokerRetransmits
			res.RetransmitsClient = client.Get(reliable.CounterRetransmits)
			res.Retransmits = res.RetransmitsBroker + res.RetransmitsClient
			res.DatagramsSent = after.brokerPackets - before.brokerPackets + client.Get(reliable.CounterPacketsSent)
		} else if nl != nil {
			res.Retransmits = after.tcpRetransmits - before.tcpRetransmits
		}
		switch {
		case nl != nil:
			res.PacketsDropped = after.dropped - before.dropped
		case tap != nil && path == "raptor":
			res.DatagramsSent, res.PacketsDropped = tap.stats()
		}
		if path == "raptor" {
			res.DatagramsDropped = res.PacketsDropped
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.Foreign != 0 || res.ProduceErrors != 0 {
			rep.OK = false
		}
		rep.Results = append(rep.Results, res)
		if ctx.Err() != nil {
			return rep, fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
	return rep, nil
}

// Loss modes of --loss-mode.
const (
	lossNetns     = "netns"     // both paths through a lossy veth link between two namespaces
	lossInProcess = "inprocess" // Raptor's datagrams only, dropped in-process
)

// demoCounters are the counters read around each path.
type demoCounters struct {
	brokerRetransmits, brokerPackets uint64 // the broker's Raptor listeners
	dropped, tcpRetransmits          uint64 // netns mode: nftables drops, kernel TCP
}

func readDemoCounters(b *kafka.Broker, nl *netnsLoss) (demoCounters, error) {
	var c demoCounters
	for _, ln := range b.Listeners() {
		for _, l := range ln.Listeners() {
			if rl, ok := l.(*reliable.Listener); ok {
				st := rl.Stats()
				c.brokerRetransmits += st.Get(reliable.CounterRetransmits)
				c.brokerPackets += st.Get(reliable.CounterPacketsSent)
			}
		}
	}
	if nl == nil {
		return c, nil
	}
	var err error
	if c.dropped, err = nl.dropped(); err != nil {
		return c, err
	}
	c.tcpRetransmits, err = nl.tcpRetransmits()
	return c, err
}

// runDemoPath produces and consumes cfg.messages records on topic through a
// client made with opts, and measures.
func runDemoPath(ctx context.Context, cfg demoConfig, broker, topic, path string, opts []kgo.Opt, bar *demoBar) demoResult {
	res := demoResult{Transport: path}
	fail := func(err error) demoResult {
		res.FirstError = err.Error()
		res.Lost = cfg.messages - res.Received
		return res
	}
	base := time.Now()
	assigned := make(chan struct{})
	var assignOnce sync.Once
	group := fmt.Sprintf("raptor-demo-%s-%d", path, base.UnixNano())
	consOpts := append([]kgo.Opt{
		kgo.SeedBrokers(broker),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			assignOnce.Do(func() { close(assigned) })
		}),
	}, opts...)
	cons, err := kgo.NewClient(consOpts...)
	if err != nil {
		return fail(err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(broker),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(cfg.window),
	}, opts...)...)
	if err != nil {
		return fail(err)
	}
	defer prod.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	count := benchkit.NewSeqCount(cfg.messages)
	hist := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	var (
		producedAll atomic.Int64 // records given to Produce (or dropped by an injected fault)
		failedAll   atomic.Int64
		prodDone    atomic.Bool
		lastMove    atomic.Int64 // unix ns of the last first arrival
		last        time.Time    // consumer goroutine only, read after consDone
	)
	lastMove.Store(time.Now().UnixNano())
	poll := func(pctx context.Context) {
		fetches := cons.PollFetches(pctx)
		now := time.Since(base)
		fetches.EachRecord(func(r *kgo.Record) {
			if len(r.Value) < 16 {
				count.Add(^uint64(0)) // not one of ours: foreign
				return
			}
			seq := binary.BigEndian.Uint64(r.Value)
			sent := time.Duration(binary.BigEndian.Uint64(r.Value[8:]))
			if !count.Add(seq) {
				return // a duplicate or a foreign record, counted
			}
			hist.RecordValue(max(int64((now-sent)/time.Microsecond), 1))
			last = time.Now()
			lastMove.Store(last.UnixNano())
		})
	}
	// Done when every record acknowledged to the producer arrived; then the
	// consumer drains for benchkit.DrainGrace to catch late duplicates.
	done := func() bool {
		return prodDone.Load() && count.Unique() >= producedAll.Load()-failedAll.Load()
	}
	stalled := func() bool {
		return time.Since(time.Unix(0, lastMove.Load())) > cfg.stall
	}
	consDone := make(chan struct{})
	go func() { <-consDone; cancel() }() // a stalled consumer also unblocks a producer waiting for room
	started := make(chan struct{})
	go func() {
		defer close(consDone)
		// Poll until the group is assigned, then count.
		for {
			select {
			case <-started:
				benchkit.ConsumeUntil(ctx, poll, done, stalled, benchkit.DrainGrace)
				return
			case <-ctx.Done():
				return
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
			poll(pctx)
			pcancel()
		}
	}()
	select {
	case <-assigned:
		close(started)
	case <-time.After(cfg.stall):
		cancel()
		<-consDone
		return fail(fmt.Errorf("%s: consumer group %s got no partitions within %v", path, group, cfg.stall))
	case <-ctx.Done():
		<-consDone
		return fail(ctx.Err())
	}

	bar.start(path, cfg.messages)
	var firstErr atomic.Value
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			count.Failed(binary.BigEndian.Uint64(r.Value))
			if failedAll.Add(1) == 1 {
				firstErr.Store(err.Error())
			}
		}
	}
	start := time.Now()
	var pace *time.Timer
	if cfg.rate > 0 {
		pace = time.NewTimer(time.Hour)
		defer pace.Stop()
	}
	produce := func(i int) {
		v := make([]byte, cfg.size)
		binary.BigEndian.PutUint64(v, uint64(i))
		binary.BigEndian.PutUint64(v[8:], uint64(time.Since(base)))
		if cfg.faults != nil && i == cfg.faults.drop {
			return // injected loss: counted as produced, never sent
		}
		prod.Produce(ctx, &kgo.Record{Value: v}, promise)
	}
	for i := 0; i < cfg.messages && ctx.Err() == nil; i++ {
		if pace != nil {
			// Record i is due at start + i/rate; wait when ahead by more
			// than 200µs (timer granularity), so bursts stay short.
			due := start.Add(time.Duration(float64(i) / float64(cfg.rate) * float64(time.Second)))
			if d := time.Until(due); d > 200*time.Microsecond {
				pace.Reset(d)
				select {
				case <-pace.C:
				case <-ctx.Done():
				}
			}
		}
		producedAll.Add(1)
		produce(i)
		if i&1023 == 0 {
			bar.update(int(count.Unique()))
		}
	}
	if cfg.faults != nil && cfg.faults.dup >= 0 && cfg.faults.dup < int(producedAll.Load()) {
		produce(cfg.faults.dup) // injected duplicate, after the last record
	}
	// Every record acknowledged (or failed) before the consumer may call it
	// done; a stalled consumer ends ctx, and with it this wait.
	prod.Flush(ctx)
	prodDone.Store(true)
	lastMove.Store(max(lastMove.Load(), time.Now().UnixNano())) // the stall bound counts from here at the earliest
	progress := time.NewTicker(100 * time.Millisecond)
	defer progress.Stop()
wait:
	for {
		select {
		case <-consDone:
			break wait
		case <-progress.C:
			bar.update(int(count.Unique()))
		}
	}
	cancel()
	prod.Flush(context.Background()) // returns at once: the context above ended or all is acked
	bar.done(int(count.Unique()))

	res.Produced = int(producedAll.Load())
	res.Received = int(count.Unique())
	res.Lost = int(count.Lost(0, uint64(res.Produced)))
	if res.Produced < cfg.messages { // interrupted: the rest was never produced
		res.Lost += cfg.messages - res.Produced
	}
	res.Duplicated = int(count.Duplicated())
	res.Foreign = int(count.Foreign())
	res.ProduceErrors = int(failedAll.Load())
	if s, ok := firstErr.Load().(string); ok {
		res.FirstError = s
	}
	if last.IsZero() || last.Before(start) {
		last = time.Now()
	}
	elapsed := last.Sub(start)
	res.ElapsedMs = round2(float64(elapsed) / float64(time.Millisecond))
	if secs := elapsed.Seconds(); secs > 0 {
		res.RecordsPerSec = math.Round(float64(res.Received) / secs)
		res.MBPerSec = round2(float64(res.Received) * float64(cfg.size) / secs / 1e6)
	}
	ms := func(q float64) float64 { return float64(hist.ValueAtQuantile(q)) }
	res.LatencyUs = demoLatencies{P50: ms(50), P99: ms(99), P999: ms(99.9), Max: float64(hist.Max())}
	return res
}

var demoPathNames = map[string]string{"tcp": "TCP", "raptor": "Raptor"}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func printDemoTable(w io.Writer, rep *demoReport) {
	fmt.Fprintf(w, "Raptor demo: %s records of %d B, %d partitions, embedded broker %s (TCP and Raptor on one port)",
		thousands(float64(rep.Messages)), rep.Size, rep.Partitions, rep.Broker)
	switch {
	case rep.LossPct > 0 && rep.LossMode == lossNetns:
		fmt.Fprintf(w, ",\n%.3g%% packet loss each way on both paths (a veth link between two network namespaces, nftables)", rep.LossPct)
	case rep.LossPct > 0:
		fmt.Fprintf(w, ",\n%.3g%% loss each way on Raptor's datagrams only, in-process (seed %d)", rep.LossPct, rep.Seed)
	}
	fmt.Fprint(w, "\n")
	if rep.LossNote != "" {
		fmt.Fprintf(w, "NOTE: %s.\n", rep.LossNote)
	}
	fmt.Fprint(w, "\n")
	fmt.Fprintf(w, "%-16s", "")
	for _, r := range rep.Results {
		fmt.Fprintf(w, "%14s", demoPathNames[r.Transport])
	}
	fmt.Fprintln(w)
	row := func(name string, f func(r demoResult) string) {
		fmt.Fprintf(w, "%-16s", name)
		for _, r := range rep.Results {
			fmt.Fprintf(w, "%14s", f(r))
		}
		fmt.Fprintln(w)
	}
	lat := func(us float64) string {
		if us >= 1000 {
			return fmt.Sprintf("%.2f ms", us/1000)
		}
		return fmt.Sprintf("%.0f µs", us)
	}
	row("records/s", func(r demoResult) string { return thousands(r.RecordsPerSec) })
	row("MB/s", func(r demoResult) string { return fmt.Sprintf("%.2f", r.MBPerSec) })
	row("latency p50", func(r demoResult) string { return lat(r.LatencyUs.P50) })
	row("latency p99", func(r demoResult) string { return lat(r.LatencyUs.P99) })
	row("latency p99.9", func(r demoResult) string { return lat(r.LatencyUs.P999) })
	row("lost", func(r demoResult) string { return thousands(float64(r.Lost)) })
	row("duplicated", func(r demoResult) string { return thousands(float64(r.Duplicated)) })
	row("elapsed", func(r demoResult) string { return fmt.Sprintf("%.2f s", r.ElapsedMs/1000) })
	if rep.LossPct > 0 {
		inproc := rep.LossMode != lossNetns
		row("dropped pkts", func(r demoResult) string {
			if inproc && r.Transport != "raptor" {
				return "-"
			}
			return thousands(float64(r.PacketsDropped))
		})
		row("retransmits", func(r demoResult) string {
			if inproc && r.Transport != "raptor" {
				return "-"
			}
			return thousands(float64(r.Retransmits))
		})
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Latency is end to end: from the produce call to the consumer group receiving the record.")
	if rep.Rate == 0 {
		fmt.Fprintf(w, "Records were produced as fast as possible with at most %s in flight (--window, the same on\n", thousands(float64(rep.Window)))
		fmt.Fprintln(w, "every path), so latency includes that much producer queueing; --rate 20000 shows a steady load.")
	} else {
		fmt.Fprintf(w, "Records were produced at %s per second.\n", thousands(float64(rep.Rate)))
	}
	if rep.OK {
		fmt.Fprintln(w, "OK: every record arrived exactly once on every path.")
		return
	}
	for _, r := range rep.Results {
		if r.Lost != 0 || r.Duplicated != 0 || r.ProduceErrors != 0 {
			fmt.Fprintf(w, "FAILED %s: %d lost, %d duplicated, %d produce errors", r.Transport, r.Lost, r.Duplicated, r.ProduceErrors)
			if r.FirstError != "" {
				fmt.Fprintf(w, " (first: %s)", r.FirstError)
			}
			fmt.Fprintln(w)
		}
	}
}

// thousands formats v rounded, with comma separators.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// demoBar draws progress on stderr: redrawn in place on a terminal, a line
// every two seconds otherwise.
type demoBar struct {
	w        io.Writer
	on, tty  bool
	name     string
	total    int
	started  time.Time
	lastDraw time.Time
}

func newDemoBar(w io.Writer, on bool) *demoBar {
	b := &demoBar{w: w, on: on}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	return b
}

func (b *demoBar) start(name string, total int) {
	b.name, b.total, b.started, b.lastDraw = name, total, time.Now(), time.Time{}
	b.update(0)
}

func (b *demoBar) update(n int) {
	if !b.on {
		return
	}
	now := time.Now()
	gap := 2 * time.Second
	if b.tty {
		gap = 100 * time.Millisecond
	}
	if !b.lastDraw.IsZero() && now.Sub(b.lastDraw) < gap {
		return
	}
	b.lastDraw = now
	b.draw(n, false)
}

func (b *demoBar) done(n int) {
	if b.on {
		b.draw(n, true)
	}
}

func (b *demoBar) draw(n int, final bool) {
	const width = 30
	frac := float64(n) / float64(max(b.total, 1))
	fill := int(frac * width)
	bar := strings.Repeat("#", fill) + strings.Repeat("-", width-fill)
	line := fmt.Sprintf("%-7s [%s] %3.0f%%  %s/%s records  %.1fs", b.name, bar, frac*100,
		thousands(float64(n)), thousands(float64(b.total)), time.Since(b.started).Seconds())
	switch {
	case b.tty && final:
		fmt.Fprintf(b.w, "\r%s\n", line)
	case b.tty:
		fmt.Fprintf(b.w, "\r%s", line)
	default:
		fmt.Fprintln(b.w, line)
	}
}

// snmpField reads field of the /proc/net/snmp table whose lines start with
// prefix (a header line of names, then a line of values).
func snmpField(snmp []byte, prefix, field string) (uint64, error) {
	var names []string
	for _, line := range strings.Split(string(snmp), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != prefix {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == field && i < len(f) {
				return strconv.ParseUint(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("no %s %s", prefix, field)
}
