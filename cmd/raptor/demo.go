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
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/impair"
	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

func init() {
	register("demo", command{
		summary: "Kafka over TCP and over Raptor side by side on an embedded broker",
		run:     runDemo,
	})
}

const demoUsage = `Usage: raptor demo [flags]

Starts an embedded Kafka-protocol broker that listens with TCP and Raptor on
one port, then for each path produces --messages records with franz-go and
consumes them with a consumer group, and prints records/s, MB/s, end-to-end
latency (produce call to consumer receipt) and records lost and duplicated.

Exit status: 0 when every record arrived exactly once on every path, 1 when
any was lost or duplicated (or a produce failed), 2 on bad flags.

Flags:
`

// demoConfig is the parsed command line of raptor demo.
type demoConfig struct {
	messages   int
	size       int
	partitions int
	loss       float64 // percent
	seed       int64
	rate       int
	paths      []string
	stall      time.Duration
	jsonOut    bool
	progress   bool
	verbose    bool
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	var cfg demoConfig
	fs := flag.NewFlagSet("raptor demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage); fs.PrintDefaults() }
	fs.IntVar(&cfg.messages, "messages", 100_000, "records to produce and consume on each path")
	fs.IntVar(&cfg.size, "size", 100, "bytes per record value (at least 16)")
	fs.IntVar(&cfg.partitions, "partitions", 6, "partitions of each demo topic")
	fs.Float64Var(&cfg.loss, "loss", 0, "percent of Raptor datagrams dropped in each direction, in-process (0-50)")
	fs.Int64Var(&cfg.seed, "seed", 0, "seed of the loss pattern (0: from the clock)")
	fs.IntVar(&cfg.rate, "rate", 0, "records per second to produce (0: as fast as the producer goes)")
	pathList := fs.String("paths", "tcp,raptor", "paths to run, comma separated: tcp, raptor")
	fs.DurationVar(&cfg.stall, "stall", 30*time.Second, "give up on a path when no record arrives for this long")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print the results as one JSON object instead of a table")
	noProgress := fs.Bool("no-progress", false, "do not draw the progress bar on stderr")
	fs.BoolVar(&cfg.verbose, "v", false, "log broker and transport events to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "raptor demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.progress = !*noProgress
	for _, p := range strings.Split(*pathList, ",") {
		p = strings.TrimSpace(strings.ToLower(p))
		if p != "tcp" && p != "raptor" {
			fmt.Fprintf(stderr, "raptor demo: unknown path %q in --paths (want tcp, raptor)\n", p)
			return 2
		}
		cfg.paths = append(cfg.paths, p)
	}
	switch {
	case cfg.messages <= 0:
		fmt.Fprintf(stderr, "raptor demo: --messages %d must be positive\n", cfg.messages)
		return 2
	case cfg.size < 16 || cfg.size > 1<<20:
		fmt.Fprintf(stderr, "raptor demo: --size %d must be from 16 to 1048576 bytes\n", cfg.size)
		return 2
	case cfg.partitions <= 0 || cfg.partitions > 1000:
		fmt.Fprintf(stderr, "raptor demo: --partitions %d must be from 1 to 1000\n", cfg.partitions)
		return 2
	case !(cfg.loss >= 0 && cfg.loss <= 50):
		fmt.Fprintf(stderr, "raptor demo: --loss %v must be a percentage from 0 to 50\n", cfg.loss)
		return 2
	case cfg.rate < 0:
		fmt.Fprintf(stderr, "raptor demo: --rate %d must not be negative\n", cfg.rate)
		return 2
	}
	if cfg.seed == 0 {
		cfg.seed = time.Now().UnixNano()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := runDemoPaths(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "raptor demo: %v\n", err)
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

// demoReport is the JSON output of raptor demo.
type demoReport struct {
	Messages   int          `json:"messages"`
	Size       int          `json:"size_bytes"`
	Partitions int          `json:"partitions"`
	LossPct    float64      `json:"loss_pct"`
	Seed       int64        `json:"seed"`
	Rate       int          `json:"rate"`
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
	ProduceErrors int           `json:"produce_errors"`
	FirstError    string        `json:"first_error,omitempty"`
	ElapsedMs     float64       `json:"elapsed_ms"`
	RecordsPerSec float64       `json:"records_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"`
	LatencyUs     demoLatencies `json:"latency_us"`
	// Raptor path only.
	DatagramsSent    uint64 `json:"datagrams_sent,omitempty"`
	DatagramsDropped uint64 `json:"datagrams_dropped,omitempty"`
	Retransmits      uint64 `json:"retransmits,omitempty"`
}

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
	var tap *lossTap
	var brokerOpts, clientOpts []plugin.Option
	if cfg.loss > 0 {
		tap = &lossTap{pct: cfg.loss}
		tap.seed.Store(cfg.seed)
		brokerOpts = append(brokerOpts, plugin.WithPacketConn(tap.open))
		clientOpts = append(clientOpts, plugin.WithPacketConn(tap.open))
	}
	topics := make([]string, len(cfg.paths))
	for i, p := range cfg.paths {
		topics[i] = "raptor-demo-" + p
	}
	b, err := kafka.NewBroker(kafka.BrokerConfig{
		Partitions: cfg.partitions, Topics: topics, TransportOptions: brokerOpts, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	defer b.Close()
	rep := &demoReport{Messages: cfg.messages, Size: cfg.size, Partitions: cfg.partitions, LossPct: cfg.loss, Seed: cfg.seed, Rate: cfg.rate, Broker: b.Addr(), OK: true}
	bar := newDemoBar(stderr, cfg.progress)
	for i, path := range cfg.paths {
		var opts []kgo.Opt
		var d *kafka.Dialer
		if path == "raptor" {
			d, err = kafka.NewDialer(kafka.WithTransportOptions(clientOpts...), kafka.WithLogger(logger))
			if err != nil {
				return nil, err
			}
			opts = append(opts, d.Opt())
		}
		res := runDemoPath(ctx, cfg, b.Addr(), topics[i], path, opts, bar)
		if d != nil {
			d.Close()
		}
		if path == "raptor" {
			if tap != nil {
				res.DatagramsSent, res.DatagramsDropped = tap.stats()
			}
			for _, ln := range b.Listeners() {
				if rl, ok := ln.Listeners()[1].(*reliable.Listener); ok {
					res.Retransmits += rl.Stats().Counters[reliable.CounterRetransmits]
				}
			}
		}
		if res.Lost != 0 || res.Duplicated != 0 || res.ProduceErrors != 0 {
			rep.OK = false
		}
		rep.Results = append(rep.Results, res)
		if ctx.Err() != nil {
			return rep, fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
	return rep, nil
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
	}, opts...)...)
	if err != nil {
		return fail(err)
	}
	defer prod.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := make([]bool, cfg.messages)
	hist := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	var received atomic.Int64
	var dups int
	var last time.Time
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		for received.Load() < int64(cfg.messages) {
			fetches := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Since(base)
			fetches.EachRecord(func(r *kgo.Record) {
				if len(r.Value) < 16 {
					return
				}
				seq := binary.BigEndian.Uint64(r.Value)
				sent := time.Duration(binary.BigEndian.Uint64(r.Value[8:]))
				if seq >= uint64(cfg.messages) {
					return
				}
				if seen[seq] {
					dups++
					return
				}
				seen[seq] = true
				hist.RecordValue(max(int64((now-sent)/time.Microsecond), 1))
				received.Add(1)
			})
			last = time.Now()
		}
	}()
	select {
	case <-assigned:
	case <-time.After(cfg.stall):
		cancel()
		<-consDone
		return fail(fmt.Errorf("%s: consumer group %s got no partitions within %v", path, group, cfg.stall))
	case <-ctx.Done():
		<-consDone
		return fail(ctx.Err())
	}

	bar.start(path, cfg.messages)
	var produceErrs atomic.Int64
	var firstErr atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil && produceErrs.Add(1) == 1 {
			firstErr.Store(err.Error())
		}
	}
	start := time.Now()
	var pace *time.Timer
	if cfg.rate > 0 {
		pace = time.NewTimer(time.Hour)
		defer pace.Stop()
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
		v := make([]byte, cfg.size)
		binary.BigEndian.PutUint64(v, uint64(i))
		binary.BigEndian.PutUint64(v[8:], uint64(time.Since(base)))
		prod.Produce(ctx, &kgo.Record{Value: v}, promise)
		res.Produced++
		if i&1023 == 0 {
			bar.update(int(received.Load()))
		}
	}
	// Wait for the consumer, giving up after cfg.stall without progress.
	progress := time.NewTicker(100 * time.Millisecond)
	defer progress.Stop()
	lastCount, lastMove := received.Load(), time.Now()
wait:
	for {
		select {
		case <-consDone:
			break wait
		case <-ctx.Done():
			break wait
		case now := <-progress.C:
			n := received.Load()
			bar.update(int(n))
			if n != lastCount {
				lastCount, lastMove = n, now
			} else if now.Sub(lastMove) > cfg.stall {
				break wait
			}
		}
	}
	cancel()
	<-consDone
	prod.Flush(context.Background()) // returns at once: the context above already ended or all is acked
	bar.done(int(received.Load()))

	res.Received = int(received.Load())
	res.Lost = cfg.messages - res.Received
	res.Duplicated = dups
	res.ProduceErrors = int(produceErrs.Load())
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
	if rep.LossPct > 0 {
		fmt.Fprintf(w, ", %.3g%% Raptor packet loss each way (seed %d)", rep.LossPct, rep.Seed)
	}
	fmt.Fprint(w, "\n\n")
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
		row("dropped pkts", func(r demoResult) string {
			if r.Transport != "raptor" {
				return "-"
			}
			return thousands(float64(r.DatagramsDropped))
		})
		row("retransmits", func(r demoResult) string {
			if r.Transport != "raptor" {
				return "-"
			}
			return thousands(float64(r.Retransmits))
		})
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Latency is end to end: from the produce call to the consumer group receiving the record.")
	if rep.Rate == 0 {
		fmt.Fprintln(w, "Records were produced as fast as possible, so latency includes producer queueing;")
		fmt.Fprintln(w, "use --rate 20000 to see latency at a steady load.")
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
