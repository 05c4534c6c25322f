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
	"testing"
	"time"
)

// countOpts bounds a run by count, with a duration far above what the count
// needs, so that the assertion is about counting, never about speed.
func countOpts(size, n int) Options {
	return Options{Size: size, MaxMessages: n, Count: n, Warmup: 10, Duration: 2 * time.Minute, Timeout: 2 * time.Minute}
}

// reliable lists the stream transports of this module.
func reliableTransports() []Transport { return []Transport{TCP{}, &Raptor{}} }

func TestThroughputCountsEveryMessage(t *testing.T) {
	for _, tr := range reliableTransports() {
		for _, size := range []int{16, 64, 1000, 1024, 65536} {
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

// On UDP the harness counts, it does not assume: what was not received is
// loss, and nothing is received that was not sent.
func TestUDPCountsLoss(t *testing.T) {
	r, err := RunRTT(context.Background(), UDP{}, countOpts(64, 200))
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 200 || r.Received > r.Sent {
		t.Fatalf("rtt sent %d received %d", r.Sent, r.Received)
	}
	if want := 100 * float64(r.Sent-r.Received) / float64(r.Sent); r.LossPct != want {
		t.Fatalf("loss %.3f%%, want %.3f%%", r.LossPct, want)
	}
	r, err = RunThroughput(context.Background(), UDP{}, countOpts(64, 2000))
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 2000 || r.Received > r.Sent || r.Received == 0 {
		t.Fatalf("throughput sent %d received %d", r.Sent, r.Received)
	}
}

func TestKafkaCountsEveryRecord(t *testing.T) {
	for _, tr := range reliableTransports() {
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
	want := "cpu_s_per_mmsg loss_pct max_us mb_per_s msgs_per_s p50_us p90_us p999_us p99_us size suite transport"
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
		{[]string{"rtt", "--plot", "out.svg"}, "PNG"},
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
	code := Main("raptor bench", []string{"rtt", "--transport", "tcp,udp", "--size", "64", "--count", "200", "--warmup", "20", "--json", "--plot", plot}, &stdout, &stderr, Default())
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
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("plot not a PNG (%v)", err)
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
	if err := WritePlot(filepath.Join(t.TempDir(), "all.png"), "test", rs); err != nil {
		t.Fatal(err)
	}
}

func TestProgressBar(t *testing.T) {
	// A run shorter than the delay prints nothing.
	var buf syncBuffer
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
		"throughput 64 B, raptor ÷ tcp (3000000 ÷ 1000000 msgs/s; CPU s/Mmsg 0 vs 0): 3.00× (aim ≥ 3×) — **met**",
		"throughput 64 B, raptor ÷ quic (3000000 ÷ 0 msgs/s; CPU s/Mmsg 0 vs 0): not measured",
		"p99 at 1% loss, raptor (tcp: 0 ms): 5.0 ms (aim ≤ 10 ms) — **met**",
		"p99.9 at 1% loss, raptor (tcp: 0 ms): 25.0 ms (aim ≤ 20 ms) — **not met**",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("targets lack %q:\n%s", want, s)
		}
	}
	var stdout, stderr bytes.Buffer
	plot := filepath.Join(dir, "r.png")
	if code := Main("b", []string{"report", "--plot", plot, path}, &stdout, &stderr, Default()); code != 0 {
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
			r, err := RunIdle(context.Background(), tr, IdleOptions{Conns: 5, Duration: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if r.Suite != SuiteIdle || r.Sent != 5 || r.IdleCPUPct < 0 || r.IdleBytesPerConn < 0 {
				t.Fatalf("%+v", r)
			}
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
