package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FlagError reports a command-line flag with a value the bench rejects.
type FlagError struct {
	Flag   string
	Value  string
	Reason string
}

func (e *FlagError) Error() string {
	return fmt.Sprintf("bench: --%s %q: %s", e.Flag, e.Value, e.Reason)
}

// Config is a parsed bench command line.
type Config struct {
	Suite      string // rtt, throughput, kafka, all, serve
	Transports []Named
	Sizes      []int
	Opts       Options
	Format     string // table, json, markdown
	Plot       string
	Title      string
	Listen     string
	ServeFor   time.Duration
	Save       string   // archive file results are appended to
	Condition  string   // network conditions recorded with each result
	Files      []string // report: archives to read
	Targets    bool     // report: also the targets, as a list
	Lossy1     string   // report: condition of the 1% loss results
	Lossy5     string   // report: condition of the 5% loss results
	CPUProfile string   // pprof CPU profile of the whole command
	MemProfile string   // pprof allocation profile, written at the end
	Idle       IdleOptions
	Loops      LoopsOptions
	Verbose    bool // the transport's counters after each run

	plot PlotFunc // the registry's chart writer
}

const usageText = `Usage: %s <rtt|throughput|kafka|idle|loops|all|serve> [flags]
       %s report [--targets] [--plot FILE.png] ARCHIVE.jsonl...

Suites:
  rtt         ping-pong of one message at a time after warm-up: latency percentiles
  throughput  one-way stream for a fixed duration, one Write per message,
              counted at the receiver: msgs/s, MB/s, CPU and system calls per message
  kafka       franz-go producer -> embedded broker -> consumer over the transport:
              end-to-end latency at --rate records/s, and records/s at full speed
  idle        --conns conns (sessions) left idle for --duration: CPU used meanwhile,
              live heap per conn
  loops       --sessions sessions stream one way at once into one Raptor listener
              with each of --receive-loops receive loops (SO_REUSEPORT): msgs/s,
              CPU per message, the spread over the loops, the ratio to the first
  all         rtt, throughput, kafka and idle in turn
  serve       run bench servers for a client elsewhere (--listen HOST:PORT; each
              transport on PORT+offset: udp 0, tcp 1, raptor 2, kcp 3, quic 4,
              tcp-buffered 6, tcp+tls 7, tcp+tls-buffered 9; an embedded Kafka broker over each
              stream transport on PORT+10+offset)
  report      Markdown tables (and charts, targets) from archives written by --save

Flags:
`

// ParseArgs parses a bench command line against the transports of reg.
func ParseArgs(prog string, args []string, reg *Registry, stderr io.Writer) (*Config, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			// The flags depend on the suite: name them there, not an empty list.
			fmt.Fprint(stderr, strings.TrimSuffix(fmt.Sprintf(usageText, prog, prog), "Flags:\n"))
			fmt.Fprintf(stderr, "Run '%s <suite> -h' for the flags of a suite.\n", prog)
			return nil, flag.ErrHelp
		}
		return nil, fmt.Errorf("bench: missing suite: one of rtt, throughput, kafka, idle, loops, all, serve, report")
	}
	cfg := &Config{Suite: args[0]}
	switch cfg.Suite {
	case "rtt", "throughput", "kafka", "idle", "loops", "all", "serve", "report":
	default:
		return nil, fmt.Errorf("bench: unknown suite %q: one of rtt, throughput, kafka, idle, loops, all, serve, report", cfg.Suite)
	}
	fs := flag.NewFlagSet(prog+" "+cfg.Suite, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, usageText, prog, prog)
		fs.PrintDefaults()
	}
	defSizes := "64,1024"
	if cfg.Suite == "kafka" {
		defSizes = "64"
	}
	defTransports := strings.Join(reg.Names(), ",")
	if cfg.Suite == "loops" {
		defTransports = "raptor" // the suite measures a Raptor listener
	}
	transports := fs.String("transport", defTransports, "comma-separated transports: "+strings.Join(reg.Names(), ", ")+" (loops: raptor, raptor-plaintext)")
	sizes := fs.String("size", defSizes, "comma-separated message (request) sizes in bytes, each in [16, 1048576]")
	reply := fs.Int("reply", 0, "rtt reply size in bytes (0: same as the request)")
	count := fs.Int("count", 0, "rtt round trips measured (default 20000); kafka records at the fixed rate (default 5000)")
	warmup := fs.Int("warmup", 1000, "unmeasured round trips (kafka records, at most 500) first")
	maxMsgs := fs.Int("max-messages", 100_000_000, "upper bound of messages per throughput or kafka-max run")
	duration := fs.Duration("duration", 3*time.Second, "how long throughput and kafka-max send")
	timeout := fs.Duration("timeout", 45*time.Second, "upper bound of one run; an rtt run cut short reports what it measured")
	lossTimeout := fs.Duration("loss-timeout", 200*time.Millisecond, "udp: how long a round trip waits before counting the datagram lost")
	rate := fs.Int("rate", 2000, "kafka offered rate in records/s")
	conns := fs.Int("conns", 100, "idle: conns (sessions) to open and leave idle")
	sessions := fs.Int("sessions", 8, "loops: client sessions streaming at once, each from its own socket")
	recvLoops := fs.String("receive-loops", "1,2", "loops: comma-separated receive loop counts of the listener, each compared with the first")
	repeat := fs.Int("repeat", 1, "loops: run the loop counts in turn this many times (1,2,1,2,...) and add medians")
	jsonOut := fs.Bool("json", false, "one JSON object per result per line")
	mdOut := fs.Bool("markdown", false, "a Markdown table")
	plotFile := fs.String("plot", "", "also draw latency and throughput charts into this PNG file")
	title := fs.String("title", "raptor bench", "chart title")
	remote := fs.String("remote", "", "HOST:PORT of a 'bench serve' server (default: a server in this process on loopback)")
	listen := fs.String("listen", "", "serve: HOST:PORT base address to listen on")
	serveFor := fs.Duration("serve-for", time.Hour, "serve: stop after this long")
	noProgress := fs.Bool("no-progress", false, "no progress bar on stderr")
	verbose := fs.Bool("verbose", false, "after each run, the transport's own counters on stderr (raptor: retransmits, RTOs, NAKs)")
	save := fs.String("save", "", "also append every result, with all its fields, to this archive (JSON lines) for 'report'")
	condition := fs.String("condition", "", "network conditions recorded with the results in --save (e.g. \"1% loss, 1ms delay\")")
	cpuProfile := fs.String("cpuprofile", "", "write a pprof CPU profile of the runs to this file")
	memProfile := fs.String("memprofile", "", "write a pprof allocation profile (all allocations since start) to this file")
	targets := fs.Bool("targets", false, "report: also list how raptor compares with the targets of issue 3")
	lossy1 := fs.String("lossy1", "", "report --targets: the condition of the 1% loss results")
	lossy5 := fs.String("lossy5", "", "report --targets: the condition of the 5% loss results")
	via := fs.String("via", "", "kafka: also run the workload as a non-Go client does, 'proxy': TCP -> raptor proxy -> Raptor -> broker")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if cfg.Suite == "report" {
		if fs.NArg() == 0 {
			return nil, fmt.Errorf("bench: report needs at least one archive written by --save")
		}
		cfg.Files, cfg.Targets, cfg.Lossy1, cfg.Lossy5 = fs.Args(), *targets, *lossy1, *lossy5
		cfg.Format, cfg.Plot, cfg.Title = "markdown", *plotFile, *title
		if *jsonOut {
			cfg.Format = "json"
		}
		if err := checkPlot(cfg.Plot, reg); err != nil {
			return nil, err
		}
		cfg.plot = reg.plot
		return cfg, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("bench: unexpected argument %q (flags only after the suite)", fs.Arg(0))
	}
	names := splitList(*transports)
	if len(names) == 0 {
		return nil, &FlagError{Flag: "transport", Value: *transports, Reason: "no transport named"}
	}
	ts, err := reg.Lookup(names)
	if err != nil {
		return nil, &FlagError{Flag: "transport", Value: *transports, Reason: err.Error()}
	}
	cfg.Transports = ts
	if *via != "" { // issue #11: the kcat-style path as one more row
		t, known := reg.lookupVia(*via)
		if t == nil || cfg.Suite != "kafka" {
			return nil, &FlagError{Flag: "via", Value: *via, Reason: fmt.Sprintf("with the kafka suite only, one of %v", known)}
		}
		cfg.Transports = append(cfg.Transports, t)
	}
	for _, s := range splitList(*sizes) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, &FlagError{Flag: "size", Value: s, Reason: "not a whole number of bytes"}
		}
		if n < minSize || n > maxSize {
			return nil, &FlagError{Flag: "size", Value: s, Reason: fmt.Sprintf("outside [%d, %d]", minSize, maxSize)}
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	if len(cfg.Sizes) == 0 {
		return nil, &FlagError{Flag: "size", Value: *sizes, Reason: "no size given"}
	}
	checks := []struct {
		ok        bool
		flag, val string
		reason    string
	}{
		{*reply == 0 || (*reply >= minSize && *reply <= maxSize), "reply", fmt.Sprint(*reply), fmt.Sprintf("outside [%d, %d]", minSize, maxSize)},
		{*count >= 0 && *count <= 10_000_000, "count", fmt.Sprint(*count), "outside [1, 10000000]"},
		{*warmup >= 0 && *warmup <= 1_000_000, "warmup", fmt.Sprint(*warmup), "outside [0, 1000000]"},
		{*maxMsgs >= 1, "max-messages", fmt.Sprint(*maxMsgs), "must be at least 1"},
		{*duration >= 10*time.Millisecond && *duration <= 10*time.Minute, "duration", duration.String(), "outside [10ms, 10m]"},
		{*timeout >= time.Second && *timeout <= 30*time.Minute, "timeout", timeout.String(), "outside [1s, 30m]"},
		{*lossTimeout >= time.Millisecond && *lossTimeout <= 10*time.Second, "loss-timeout", lossTimeout.String(), "outside [1ms, 10s]"},
		{*rate >= 1 && *rate <= 1_000_000, "rate", fmt.Sprint(*rate), "outside [1, 1000000] records/s"},
		{*conns >= 1 && *conns <= 10000, "conns", fmt.Sprint(*conns), "outside [1, 10000]"},
		{*sessions >= 1 && *sessions <= 1024, "sessions", fmt.Sprint(*sessions), "outside [1, 1024]"},
		{*repeat >= 1 && *repeat <= 100, "repeat", fmt.Sprint(*repeat), "outside [1, 100]"},
		{*remote == "" || cfg.Suite != "loops", "remote", *remote, "the loops suite runs its listener and clients in one process"},
		{!(*jsonOut && cfg.Suite == "idle"), "json", "true", "the idle suite has no JSON form (use --save)"},
		{*remote == "" || cfg.Suite != "idle", "remote", *remote, "the idle suite runs in one process"},
		{*serveFor >= time.Second && *serveFor <= 24*time.Hour, "serve-for", serveFor.String(), "outside [1s, 24h]"},
		{!(*jsonOut && *mdOut), "markdown", "true", "--json and --markdown exclude each other"},
		{*remote == "" || cfg.Suite != "serve", "remote", *remote, "serve takes --listen, not --remote"},
		{cfg.Suite != "serve" || *listen != "", "listen", *listen, "serve needs a HOST:PORT base address"},
	}
	for _, c := range checks {
		if !c.ok {
			return nil, &FlagError{Flag: c.flag, Value: c.val, Reason: c.reason}
		}
	}
	if *remote != "" {
		if _, err := RemoteAddr(*remote, "udp"); err != nil {
			return nil, &FlagError{Flag: "remote", Value: *remote, Reason: err.Error()}
		}
	}
	if *listen != "" {
		if _, err := RemoteAddr(*listen, "udp"); err != nil {
			return nil, &FlagError{Flag: "listen", Value: *listen, Reason: err.Error()}
		}
	}
	if err := checkPlot(*plotFile, reg); err != nil {
		return nil, err
	}
	cfg.plot = reg.plot
	w := *warmup
	if w == 0 {
		w = -1
	}
	cfg.Opts = Options{
		Reply: *reply, Count: *count, MaxMessages: *maxMsgs, Warmup: w, Duration: *duration, Timeout: *timeout,
		LossTimeout: *lossTimeout, Rate: *rate, Remote: *remote,
	}
	if !*noProgress {
		cfg.Opts.Progress = stderr
	}
	cfg.Format = "table"
	if *jsonOut {
		cfg.Format = "json"
	} else if *mdOut {
		cfg.Format = "markdown"
	}
	cfg.Plot, cfg.Title, cfg.Listen, cfg.ServeFor = *plotFile, *title, *listen, *serveFor
	cfg.Save, cfg.Condition = *save, *condition
	cfg.CPUProfile, cfg.MemProfile = *cpuProfile, *memProfile
	cfg.Idle = IdleOptions{Conns: *conns, Duration: *duration}
	cfg.Loops = LoopsOptions{Sessions: *sessions, Repeat: *repeat}
	for _, v := range splitList(*recvLoops) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 256 {
			return nil, &FlagError{Flag: "receive-loops", Value: v, Reason: "not a whole number in [1, 256]"}
		}
		cfg.Loops.Loops = append(cfg.Loops.Loops, n)
	}
	if len(cfg.Loops.Loops) == 0 {
		return nil, &FlagError{Flag: "receive-loops", Value: *recvLoops, Reason: "no loop count given"}
	}
	if cfg.Suite == "loops" {
		for _, t := range cfg.Transports {
			if _, ok := t.(raptorConfigured); !ok {
				return nil, &FlagError{Flag: "transport", Value: t.Name(), Reason: "the loops suite measures a Raptor listener: raptor or raptor-plaintext"}
			}
		}
	}
	cfg.Verbose = *verbose
	return cfg, nil
}

func checkPlot(file string, reg *Registry) error {
	switch {
	case file == "":
		return nil
	case reg.plot == nil:
		return &FlagError{Flag: "plot", Value: file, Reason: "this binary draws no charts (gonum/plot stays out of the main module's commands): use raptor-bench-all of the bench/ module, as scripts/compare.sh does"}
	case !strings.HasSuffix(strings.ToLower(file), ".png"):
		return &FlagError{Flag: "plot", Value: file, Reason: "the chart is a PNG: name the file *.png"}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Main runs a bench command line (args after "bench") and returns the exit
// status: 0 when every run succeeded, 1 when one failed, 2 on a usage error.
func Main(prog string, args []string, stdout, stderr io.Writer, reg *Registry) int {
	cfg, err := ParseArgs(prog, args, reg, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "Run '%s -h' for usage.\n", prog)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Suite == "serve" {
		return serve(ctx, cfg, stderr)
	}
	if cfg.Suite == "report" {
		return report(cfg, stdout, stderr)
	}
	if cfg.MemProfile != "" {
		runtime.MemProfileRate = 4096
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench: cpu profile:", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if cfg.MemProfile != "" {
		defer func() {
			f, err := os.Create(cfg.MemProfile)
			if err == nil {
				err = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
			if err != nil {
				fmt.Fprintln(stderr, "bench: memory profile:", err)
			}
		}()
	}
	m := ThisMachine()
	switch cfg.Format {
	case "json":
		fmt.Fprintln(stderr, m.Header())
	default:
		fmt.Fprintln(stdout, m.Header())
	}
	defer func() {
		for _, t := range cfg.Transports {
			if c, ok := t.(io.Closer); ok {
				c.Close()
			}
		}
	}()
	results, failed := RunAll(ctx, cfg, func(r Result) {
		if cfg.Format == "json" {
			WriteJSON(stdout, []Result{r})
		}
	}, stderr)
	if cfg.Save != "" && len(results) > 0 {
		if err := SaveResults(cfg.Save, results); err != nil {
			fmt.Fprintln(stderr, err)
			failed = true
		}
	}
	switch cfg.Format {
	case "table":
		if len(results) > countIdle(results) {
			WriteTable(stdout, results)
			WriteLoopsSummary(stdout, results)
		}
		if hasIdle(results) {
			fmt.Fprintln(stdout)
			WriteIdleMarkdown(stdout, results)
		}
	case "markdown":
		if len(results) > countIdle(results) {
			WriteMarkdown(stdout, results)
			WriteLoopsSummary(stdout, results)
		}
		if hasIdle(results) {
			fmt.Fprintln(stdout)
			WriteIdleMarkdown(stdout, results)
		}
	}
	if cfg.Plot != "" && len(results) > 0 {
		if err := cfg.plot(cfg.Plot, cfg.Title, results); err != nil {
			fmt.Fprintln(stderr, err)
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

// RunAll runs the configured suites over every configured transport and
// size, calling each with every result as it is made; failures are written
// to stderr and reported by failed.
func RunAll(ctx context.Context, cfg *Config, each func(Result), stderr io.Writer) (results []Result, failed bool) {
	suites := []string{cfg.Suite}
	if cfg.Suite == "all" {
		suites = []string{"rtt", "throughput", "kafka", "idle"}
	}
	add := func(r Result) {
		r.Condition = cfg.Condition
		results = append(results, r)
		if each != nil {
			each(r)
		}
	}
	for _, suite := range suites {
		for _, t := range cfg.Transports {
			for _, size := range cfg.Sizes {
				if ctx.Err() != nil {
					return results, true
				}
				o := cfg.Opts
				o.Size = size
				var err error
				switch suite {
				case "rtt":
					var r Result
					if r, err = RunRTT(ctx, t, o); err == nil {
						add(r)
					}
				case "throughput":
					var r Result
					if r, err = RunThroughput(ctx, t, o); err == nil {
						add(r)
					}
				case "loops":
				loops:
					for rep := 0; rep < max(cfg.Loops.Repeat, 1); rep++ {
						for _, n := range cfg.Loops.Loops {
							if ctx.Err() != nil {
								break loops
							}
							var r Result
							if r, err = RunLoops(ctx, t, n, o, cfg.Loops); err != nil {
								break loops
							}
							add(r)
						}
					}
				case "idle":
					st, ok := t.(Transport)
					if !ok || size != cfg.Sizes[0] {
						continue // stream transports only, once each
					}
					var r Result
					if r, err = RunIdle(ctx, st, cfg.Idle); err == nil {
						add(r)
					}
				case "kafka":
					st, ok := t.(Transport)
					if !ok {
						if cfg.Suite == "kafka" {
							fmt.Fprintf(stderr, "bench: kafka over %s skipped: it needs a stream transport\n", t.Name())
						}
						continue
					}
					if cfg.Suite == "all" && size != cfg.Sizes[0] {
						continue // kafka once per transport in "all", at the first size
					}
					var rs []Result
					rs, err = RunKafka(ctx, st, o)
					for _, r := range rs {
						if err == nil || r.Sent > 0 { // a failed phase shows its counts, if it measured any
							add(r)
						}
					}
				}
				if c, ok := t.(io.Closer); ok {
					c.Close() // each run on sessions of its own, none left busy
				}
				if rs, ok := t.(interface{ RunStats() string }); ok && cfg.Verbose {
					if s := rs.RunStats(); s != "" {
						fmt.Fprintf(stderr, "bench: %s %s %d B: %s\n", suite, t.Name(), size, s)
					}
				}
				if err != nil {
					fmt.Fprintf(stderr, "bench: %s over %s (%d B) failed: %v\n", suite, t.Name(), size, err)
					failed = true
				}
			}
		}
	}
	return results, failed
}

func serve(ctx context.Context, cfg *Config, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, cfg.ServeFor)
	defer cancel()
	var servers []Server
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for _, t := range cfg.Transports {
		addr, _ := RemoteAddr(cfg.Listen, t.Name())
		s, err := StartServer(ctx, t, addr)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		servers = append(servers, s)
		fmt.Fprintf(stderr, "bench: serving %s on %s\n", t.Name(), s.Addr())
		if st, ok := t.(Transport); ok {
			kaddr, _ := KafkaRemoteAddr(cfg.Listen, t.Name())
			b, err := StartBroker(ctx, st, kaddr)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			servers = append(servers, b)
			fmt.Fprintf(stderr, "bench: serving kafka over %s on %s\n", t.Name(), b.Addr())
		}
	}
	fmt.Fprintf(stderr, "bench: ready (stops on SIGINT/SIGTERM or after %v)\n", cfg.ServeFor)
	<-ctx.Done()
	return 0
}

func report(cfg *Config, stdout, stderr io.Writer) int {
	var all []Result
	for _, f := range cfg.Files {
		rs, err := LoadResults(f)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		all = append(all, rs...)
	}
	if cfg.Targets {
		WriteTargets(stdout, all, cfg.Lossy1, cfg.Lossy5)
	} else if cfg.Format == "json" {
		WriteJSON(stdout, all)
	} else {
		if len(all) > countIdle(all) {
			WriteMarkdown(stdout, all)
		}
		if hasIdle(all) {
			WriteIdleMarkdown(stdout, all)
		}
	}
	if cfg.Plot != "" {
		if err := cfg.plot(cfg.Plot, cfg.Title, all); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	return 0
}

func countIdle(rs []Result) int {
	n := 0
	for _, r := range rs {
		if r.Suite == SuiteIdle {
			n++
		}
	}
	return n
}

func hasIdle(rs []Result) bool { return countIdle(rs) > 0 }
