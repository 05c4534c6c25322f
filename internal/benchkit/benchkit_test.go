package benchkit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/cli/clitest"
)

// countOpts bounds a run by count, with a duration far above what the count
// needs, so that the assertion is about counting, never about speed.
func countOpts(size, n int) Options {
	return Options{Size: size, MaxMessages: n, Count: n, Warmup: 10, Duration: 2 * time.Minute, Timeout: 2 * time.Minute}
}

// reliableTransports lists the stream transports of this module.
func reliableTransports() []Transport {
	return []Transport{TCP{}, TCPBuffered{}, TCPTLS{}, &Raptor{}}
}

func TestThroughputCountsEveryMessage(t *testing.T) {
	for _, tr := range reliableTransports() {
		sizes := []int{16, 64, 1000, 1024, 65536}
		if tr.Name() != "tcp" && tr.Name() != "raptor" {
			sizes = []int{64, 65536} // the wrappers of tcp: below and above their buffer
		}
		for _, size := range sizes {
			t.Run(fmt.Sprintf("%s/%d", tr.Name(), size), func(t *testing.T) {
				n := 20000
				if size >= 65536 {
					n = 500
				}
				r, err := RunThroughput(context.Background(), tr, countOpts(size, n))
				if err != nil {
					t.Fatal(err)
				}
				if r.Sent != int64(n) || r.Received != r.Sent || r.LossPct != 0 {
					t.Fatalf("sent %d, received %d, loss %.2f%%; want %d, %d, 0", r.Sent, r.Received, r.LossPct, n, n)
				}
				if r.MsgsPerS <= 0 || r.MBPerS <= 0 {
					t.Fatalf("rates not computed: %+v", r)
				}
			})
		}
	}
}

func TestRTTCountsEveryRoundTrip(t *testing.T) {
	for _, tr := range reliableTransports() {
		t.Run(tr.Name(), func(t *testing.T) { testRTTCounts(t, tr) })
	}
}

func testRTTCounts(t *testing.T, tr Transport) {
	o := countOpts(64, 300)
	o.Reply = 1024
	r, err := RunRTT(context.Background(), tr, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 300 || r.Received != 300 || r.LossPct != 0 {
		t.Fatalf("sent %d received %d loss %.2f; want 300 300 0", r.Sent, r.Received, r.LossPct)
	}
	if !(r.P50us > 0 && r.P50us <= r.P90us && r.P90us <= r.P99us && r.P99us <= r.P999us && r.P999us <= r.MaxUs) {
		t.Fatalf("percentiles not ordered: %+v", r)
	}
	if r.Reply != 1024 {
		t.Fatalf("reply size %d, want 1024", r.Reply)
	}
}

// lossyUDP is raw UDP whose client conns drop every every-th datagram they
// write, and count what they dropped.
type lossyUDP struct {
	UDP
	every   int
	dropped *atomic.Int64
}

func (l lossyUDP) DialPacket(ctx context.Context, addr string) (net.Conn, error) {
	c, err := l.UDP.DialPacket(ctx, addr)
	if err != nil {
		return nil, err
	}
	return &dropWrites{Conn: c, every: l.every, dropped: l.dropped}, nil
}

type dropWrites struct {
	net.Conn
	every   int
	n       int
	dropped *atomic.Int64
}

func (d *dropWrites) Write(b []byte) (int, error) {
	d.n++
	if d.n%d.every == 0 {
		d.dropped.Add(1)
		return len(b), nil // lost on the way
	}
	return d.Conn.Write(b)
}

// On UDP the harness counts, it does not assume: every datagram the path
// dropped (counted by the dropper) shows up as loss, and nothing is
// received that was not sent.
func TestUDPCountsLoss(t *testing.T) {
	var dropped atomic.Int64
	tr := lossyUDP{every: 10, dropped: &dropped}
	o := countOpts(64, 200)
	o.Warmup = -1 // every round trip measured: the dropper's count is the floor of the loss
	r, err := RunRTT(context.Background(), tr, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 200 || r.Received > r.Sent-dropped.Load() || r.Received == 0 {
		t.Fatalf("rtt sent %d, received %d with %d dropped on the way", r.Sent, r.Received, dropped.Load())
	}
	if min := 100 * float64(dropped.Load()) / 200; dropped.Load() != 20 || r.LossPct < min {
		t.Fatalf("rtt loss %.2f%% with %d of 200 requests dropped (want 20, at least %.2f%%)", r.LossPct, dropped.Load(), min)
	}
	dropped.Store(0)
	r, err = RunThroughput(context.Background(), tr, countOpts(64, 2000))
	if err != nil {
		t.Fatal(err)
	}
	d := dropped.Load()
	if r.Sent != 2000 || d < 2000/10 || r.Received > r.Sent-(d-2) || r.Received == 0 {
		// d counts the retried control datagrams too: the first start and
		// finish may be among them, so allow two.
		t.Fatalf("throughput sent %d, received %d with %d datagrams dropped on the way", r.Sent, r.Received, d)
	}
	if r.LossPct < 100*float64(2000/10-2)/2000 {
		t.Fatalf("throughput loss %.2f%% with %d datagrams dropped", r.LossPct, d)
	}
}

func TestKafkaCountsEveryRecord(t *testing.T) {
	for _, tr := range []Transport{TCP{}, &Raptor{}} {
		t.Run(tr.Name(), func(t *testing.T) { testKafkaCounts(t, tr) })
	}
}

func testKafkaCounts(t *testing.T, tr Transport) {
	o := Options{Size: 64, Count: 200, Warmup: 20, Rate: 2000, Duration: 200 * time.Millisecond, MaxMessages: 3000, Timeout: time.Minute}
	rs, err := RunKafka(context.Background(), tr, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Suite != SuiteKafka || rs[1].Suite != SuiteKafkaMax {
		t.Fatalf("results %+v", rs)
	}
	for _, r := range rs {
		if r.Sent == 0 || r.Received != r.Sent || r.LossPct != 0 {
			t.Fatalf("%s: produced %d consumed %d loss %.2f", r.Suite, r.Sent, r.Received, r.LossPct)
		}
	}
	if rs[0].Sent != 200 {
		t.Fatalf("fixed-rate run produced %d measured records, want 200", rs[0].Sent)
	}
}

// A duplicate that arrives after the last new record, and a record that
// never arrives, are each reported: in the result and as a CountError.
func TestKafkaCountsInjectedFaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         kafkaFaults
		lost, dup int64
	}{
		{"late duplicate", kafkaFaults{drop: -1, dup: 150}, 0, 1},
		{"lost record", kafkaFaults{drop: 77, dup: -1}, 1, 0},
		{"one of each", kafkaFaults{drop: 77, dup: 150}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			o := Options{Size: 64, Count: 180, Warmup: 20, Rate: 5000, Duration: 100 * time.Millisecond, MaxMessages: 1000,
				Timeout: time.Minute, Stall: 3 * time.Second, faults: &f}
			rs, err := RunKafka(context.Background(), TCP{}, o)
			var ce *CountError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a CountError", err)
			}
			if ce.Lost != tc.lost || ce.Duplicated != tc.dup || ce.Produced != 180 || ce.Unique != 180-tc.lost {
				t.Fatalf("reported %+v, want %d lost and %d duplicated of 180", ce, tc.lost, tc.dup)
			}
			if len(rs) != 1 || rs[0].Duplicated != tc.dup || rs[0].Received != 180-tc.lost ||
				rs[0].LossPct != 100*float64(tc.lost)/180 {
				t.Fatalf("result %+v", rs)
			}
			var buf bytes.Buffer
			WriteJSON(&buf, rs)
			if want := fmt.Sprintf(`"duplicated":%d`, tc.dup); !strings.Contains(buf.String(), want) {
				t.Fatalf("JSON %s lacks %s", buf.String(), want)
			}
		})
	}
}

// The split mode: a server started on its own, the client told only the base
// address, maps the transport to base+offset.
func TestRemoteServer(t *testing.T) {
	s, err := StartServer(context.Background(), TCP{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, port, _ := net.SplitHostPort(s.Addr())
	var p int
	fmt.Sscan(port, &p)
	o := countOpts(64, 100)
	o.Remote = fmt.Sprintf("127.0.0.1:%d", p-PortOffsets["tcp"])
	r, err := RunRTT(context.Background(), TCP{}, o)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 100 {
		t.Fatalf("received %d, want 100", r.Received)
	}
	// The kafka suite against a broker of its own on base+10+offset.
	b, err := StartBroker(context.Background(), TCP{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, port, _ = net.SplitHostPort(b.Addr())
	fmt.Sscan(port, &p)
	ko := Options{Size: 64, Count: 100, Warmup: 10, Duration: 100 * time.Millisecond, MaxMessages: 500, Timeout: time.Minute,
		Remote: fmt.Sprintf("127.0.0.1:%d", p-KafkaPortOffset-PortOffsets["tcp"])}
	for range 2 { // twice on one broker: each run has topics of its own
		rs, err := RunKafka(context.Background(), TCP{}, ko)
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Sent != 100 || rs[0].Received != 100 || rs[1].Received != rs[1].Sent {
			t.Fatalf("remote kafka: %+v", rs)
		}
	}
	if _, err := RemoteAddr("nohost", "tcp"); err == nil {
		t.Fatal("RemoteAddr accepted an address without a port")
	}
}

func TestJSONFieldNamesAreFixed(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, []Result{{Suite: "rtt", Transport: "tcp", Size: 64, GCs: 3, Sent: 9}, {Suite: "throughput"}}); err != nil {
		t.Fatal(err)
	}
	want := "cpu_s_per_mmsg duplicated loss_pct max_us mb_per_s msgs_per_s p50_us p90_us p999_us p99_us size suite syscalls_per_msg transport"
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per result:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if got := strings.Join(keys, " "); got != want {
			t.Fatalf("fields\n got %s\nwant %s", got, want)
		}
	}
}

func TestParseArgsRejectsBadFlags(t *testing.T) {
	reg := Default()
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{nil, "missing suite"},
		{[]string{"latency"}, `unknown suite "latency"`},
		{[]string{"rtt", "--transport", "tcp,carrier-pigeon"}, `unknown transport "carrier-pigeon"`},
		{[]string{"rtt", "--transport", ""}, "no transport"},
		{[]string{"rtt", "--size", "abc"}, `--size "abc": not a whole number`},
		{[]string{"rtt", "--size", "8"}, `--size "8": outside [16, 1048576]`},
		{[]string{"rtt", "--size", "2000000"}, "outside"},
		{[]string{"rtt", "--count", "-1"}, `--count "-1"`},
		{[]string{"rtt", "--reply", "3"}, `--reply "3"`},
		{[]string{"throughput", "--duration", "1h"}, `--duration "1h0m0s": outside [10ms, 10m]`},
		{[]string{"throughput", "--duration", "soon"}, "invalid value"},
		{[]string{"rtt", "--timeout", "10ms"}, `--timeout "10ms"`},
		{[]string{"kafka", "--rate", "0"}, `--rate "0"`},
		{[]string{"rtt", "--json", "--markdown"}, "exclude each other"},
		{[]string{"rtt", "--plot", "out.png"}, "draws no charts"},
		{[]string{"rtt", "--remote", "10.0.0.1"}, `--remote "10.0.0.1"`},
		{[]string{"serve"}, "--listen"},
		{[]string{"rtt", "extra"}, `unexpected argument "extra"`},
		{[]string{"rtt", "--bogus"}, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := ParseArgs("raptor bench", tc.args, reg, &stderr)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			var stdout bytes.Buffer
			stderr.Reset()
			if code := Main("raptor bench", tc.args, &stdout, &stderr, reg); code != 2 {
				t.Fatalf("exit %d, want 2; stderr %s", code, stderr.String())
			}
		})
	}
	var fe *FlagError
	_, err := ParseArgs("b", []string{"rtt", "--size", "x"}, reg, &bytes.Buffer{})
	if !errors.As(err, &fe) || fe.Flag != "size" || fe.Value != "x" {
		t.Fatalf("error %#v is not a FlagError naming --size x", err)
	}
}

func TestParseArgsDefaults(t *testing.T) {
	cfg, err := ParseArgs("b", []string{"rtt", "--transport", "udp,tcp", "--size", "64,1024", "--json"}, Default(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Transports) != 2 || cfg.Transports[0].Name() != "udp" || fmt.Sprint(cfg.Sizes) != "[64 1024]" || cfg.Format != "json" {
		t.Fatalf("config %+v", cfg)
	}
}

func TestMainPrintsOneJSONObjectPerTransport(t *testing.T) {
	var stdout, stderr bytes.Buffer
	plot := filepath.Join(t.TempDir(), "rtt.png")
	reg := Default()
	var plotted []Result
	reg.SetPlotter(func(path, title string, rs []Result) error {
		plotted = rs
		return os.WriteFile(path, []byte("\x89PNG"), 0o644)
	})
	code := Main("raptor bench", []string{"rtt", "--transport", "tcp,udp", "--size", "64", "--count", "200", "--warmup", "20", "--json", "--plot", plot}, &stdout, &stderr, reg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var names []string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		names = append(names, r.Transport)
	}
	if strings.Join(names, ",") != "tcp,udp" {
		t.Fatalf("transports %v in stdout %q", names, stdout.String())
	}
	if !strings.Contains(stderr.String(), "cores") {
		t.Fatalf("no machine header on stderr: %q", stderr.String())
	}
	b, err := os.ReadFile(plot)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) || len(plotted) != 2 {
		t.Fatalf("plotter not called with the 2 results (%v, %d results)", err, len(plotted))
	}
	// Without a plotter (the raptor binary) --plot is refused, naming why.
	_, err = ParseArgs("raptor bench", []string{"rtt", "--plot", plot}, Default(), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "draws no charts") {
		t.Fatalf("--plot without a plotter: %v", err)
	}
}

func TestTableAndPlotOfAllSuites(t *testing.T) {
	rs := []Result{
		{Suite: SuiteRTT, Transport: "tcp", Size: 64, P50us: 10, P90us: 12, P99us: 20, P999us: 40, MaxUs: 300, MsgsPerS: 9e4},
		{Suite: SuiteRTT, Transport: "tcp", Size: 1024, Reply: 64, P50us: 12, P90us: 15, P99us: 25, P999us: 50, MaxUs: 209000},
		{Suite: SuiteThroughput, Transport: "tcp", Size: 64, MsgsPerS: 6e5, MBPerS: 38, CPUSPerMMsg: 1.5, GCs: 2},
		{Suite: SuiteKafkaMax, Transport: "tcp", Size: 64, P50us: 100, P90us: 120, P99us: 200, P999us: 400, MaxUs: 500, MsgsPerS: 1e5},
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, rs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "1024/64") || !strings.Contains(buf.String(), "p99.9 µs") {
		t.Fatalf("table:\n%s", buf.String())
	}
	buf.Reset()
	WriteMarkdown(&buf, rs)
	if n := strings.Count(buf.String(), "\n"); n != 2+len(rs) {
		t.Fatalf("markdown has %d lines, want %d", n, 2+len(rs))
	}
}

func TestProgressBar(t *testing.T) {
	// A run shorter than the delay prints nothing.
	var buf clitest.Buffer
	p := startProgress(&buf, "short", 10)
	p.set(5)
	p.stop()
	p.stop() // idempotent
	if s := buf.String(); s != "" {
		t.Fatalf("short run printed %q", s)
	}
	// The drawing itself: in place on a terminal, lines elsewhere.
	var out bytes.Buffer
	q := &progress{w: &out, label: "rtt tcp 64B", total: 10, tty: true}
	q.draw(5)
	if got := out.String(); !strings.HasPrefix(got, "\r") || !strings.Contains(got, "rtt tcp 64B") || !strings.Contains(got, " 50%") || strings.Count(got, "#") != 15 {
		t.Fatalf("tty bar %q", got)
	}
	out.Reset()
	q.tty = false
	q.draw(20)
	if got := out.String(); !strings.HasSuffix(got, "100%\n") {
		t.Fatalf("log bar %q", got)
	}
	var nilBar *progress
	nilBar.set(1)
	nilBar.stop()
}

func TestHelloRejected(t *testing.T) {
	for _, h := range [][]byte{
		appendHello(nil, 'X', 64, 64),
		appendHello(nil, modeEcho, 8, 64),
		append([]byte("XX"), appendHello(nil, modeEcho, 64, 64)[2:]...),
	} {
		if _, _, _, err := parseHello(h); err == nil {
			t.Fatalf("hello % x accepted", h)
		}
	}
}

func TestUnknownTransportError(t *testing.T) {
	_, err := Default().Lookup([]string{"tcp", "sctp"})
	var ue *UnknownTransportError
	if !errors.As(err, &ue) || ue.Name != "sctp" {
		t.Fatalf("error %v", err)
	}
}

func TestSaveLoadReportTargets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.jsonl")
	rs := []Result{
		{Suite: SuiteRTT, Transport: "raptor", Size: 64, P50us: 12, P99us: 30, MaxUs: 40, GCs: 2, Sent: 5, Received: 5, Elapsed: time.Second},
		{Suite: SuiteRTT, Transport: "udp", Size: 64, P50us: 10, P99us: 15, MaxUs: 20},
		{Suite: SuiteRTT, Transport: "raptor", Size: 1024, Reply: 64, P99us: 5000, P999us: 25000, MaxUs: 30000, Condition: "1% loss"},
		{Suite: SuiteThroughput, Transport: "raptor", Size: 64, MsgsPerS: 3e6},
		{Suite: SuiteThroughput, Transport: "tcp", Size: 64, MsgsPerS: 1e6},
	}
	if err := SaveResults(path, rs[:2]); err != nil {
		t.Fatal(err)
	}
	if err := SaveResults(path, rs[2:]); err != nil { // appends
		t.Fatal(err)
	}
	got, err := LoadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(rs) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, rs)
	}
	var out bytes.Buffer
	WriteTargets(&out, got, "1% loss", "")
	s := out.String()
	for _, want := range []string{
		"RTT 64 B p50, raptor ÷ raw udp (12.0 ÷ 10.0 µs): 1.20× (aim ≤ 1.3×) — **met**",
		"RTT 64 B p99, raptor ÷ raw udp (30.0 ÷ 15.0 µs): 2.00× (aim ≤ 1.5×) — **not met**",
		"throughput 64 B, raptor ÷ tcp (3000000 ÷ 1000000 msgs/s; CPU µs/msg 0 vs 0): 3.00× (aim ≥ 3×) — **met**",
		"throughput 64 B, raptor ÷ quic (3000000 ÷ 0 msgs/s; CPU µs/msg 0 vs 0): not measured",
		"p99 at 1% loss, raptor (tcp: 0 ms): 5.0 ms (aim ≤ 10 ms) — **met**",
		"p99.9 at 1% loss, raptor (tcp: 0 ms): 25.0 ms (aim ≤ 20 ms) — **not met**",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("targets lack %q:\n%s", want, s)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := Main("b", []string{"report", path}, &stdout, &stderr, Default()); code != 0 {
		t.Fatalf("report exit %d: %s", code, stderr.String())
	}
	if strings.Count(stdout.String(), "\n") != 2+len(rs) {
		t.Fatalf("report:\n%s", stdout.String())
	}
	if code := Main("b", []string{"report"}, &stdout, &stderr, Default()); code != 2 {
		t.Fatalf("report without files: exit %d", code)
	}
}

func TestIdleOpensEveryConn(t *testing.T) {
	for _, tr := range reliableTransports() {
		t.Run(tr.Name(), func(t *testing.T) {
			r, err := RunIdle(context.Background(), tr, IdleOptions{Conns: 5, Duration: 500 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			// Idle conns burn no CPU: a keepalive or timer spinning would
			// take a good part of a core (the bound leaves room for a
			// loaded machine and -race); each holds a bounded heap.
			if r.Suite != SuiteIdle || r.Sent != 5 || r.Received != 5 || r.IdleCPUPct > 20 || r.IdleBytesPerConn > 4<<20 {
				t.Fatalf("5 idle conns: %d opened, %d answered, %.2f%% of a core, %.0f B heap per conn (want 5, 5, ≤ 20%%, ≤ 4 MiB)",
					r.Sent, r.Received, r.IdleCPUPct, r.IdleBytesPerConn)
			}
			t.Logf("%s: %.3f%% of a core, %.1f KiB per conn", tr.Name(), r.IdleCPUPct, r.IdleBytesPerConn/1024)
		})
	}
	var stdout, stderr bytes.Buffer
	if code := Main("b", []string{"idle", "--transport", "tcp", "--conns", "3", "--duration", "20ms"}, &stdout, &stderr, Default()); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "| tcp | 3 |") || strings.Contains(stdout.String(), "p50") {
		t.Fatalf("idle output:\n%s", stdout.String())
	}
	if _, err := ParseArgs("b", []string{"idle", "--json"}, Default(), &bytes.Buffer{}); err == nil {
		t.Fatal("idle --json accepted")
	}
}
