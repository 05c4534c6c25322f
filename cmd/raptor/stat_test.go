package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raptormq/raptor/internal/cli/clitest"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// statServer serves a real registry whose Raptor counters advance by a
// fixed step on every scrape: scrape n sees 1000n packets sent, 10^6 n
// bytes sent and n bad-cookie drops.
func statServer(t *testing.T) *httptest.Server {
	t.Helper()
	var n atomic.Uint64
	src := func() reliable.Stats {
		k := n.Add(1)
		st := reliable.Stats{SmoothedRTT: 2 * time.Millisecond, CongestionWindow: 64000, BytesInFlight: 1500, BufferBytes: 8192}
		st.Counters[reliable.CounterPacketsSent] = 1000 * k
		st.Counters[reliable.CounterBytesSent] = 1e6 * k
		st.Counters[reliable.CounterDropsBadCookie] = k
		st.Counters[reliable.CounterLimitMemory] = 2 * k
		st.Counters[reliable.CounterSessionsOpened] = 3
		st.Counters[reliable.CounterSessionsClosed] = 1
		return st
	}
	relay, err := plugin.NewRelay(plugin.RelayConfig{Upstreams: []string{"tcp://127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	c, err := plugin.NewCollector(plugin.CollectorConfig{Stats: src, Relay: relay, Labels: prometheus.Labels{"endpoint": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return srv
}

func runStatTest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out, errOut clitest.Buffer
	code = statMain(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func decodeSamples(t *testing.T, out string) []statSample {
	t.Helper()
	var ss []statSample
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var s statSample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ss = append(ss, s)
	}
	return ss
}

func TestStatJSON(t *testing.T) {
	srv := statServer(t)
	code, out, errOut := runStatTest(t, "--url", srv.URL+"/metrics", "--interval", "5ms", "--count", "3", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ss := decodeSamples(t, out)
	if len(ss) != 3 {
		t.Fatalf("%d samples, want 3:\n%s", len(ss), out)
	}
	for i, s := range ss {
		k := float64(i + 1)
		if s.Counters["packets_sent"] != 1000*k || s.Counters["bytes_sent"] != 1e6*k || s.Counters["drops/bad_cookie"] != k {
			t.Errorf("sample %d counters %v", i, s.Counters)
		}
		if _, ok := s.Counters["drops/malformed"]; !ok {
			t.Errorf("sample %d lacks drops/malformed: %v", i, s.Counters)
		}
		if s.Gauges["srtt_seconds"] != 0.002 || s.Gauges["cwnd_bytes"] != 64000 || s.Gauges["bytes_in_flight"] != 1500 {
			t.Errorf("sample %d gauges %v", i, s.Gauges)
		}
		if _, ok := s.Counters["relay_bytes/up"]; !ok {
			t.Errorf("sample %d lacks the relay counters: %v", i, s.Counters)
		}
		if len(s.Endpoints) != 1 || s.Endpoints[0] != "test" {
			t.Errorf("sample %d endpoints %v", i, s.Endpoints)
		}
		if i == 0 {
			if s.Rates != nil {
				t.Errorf("first sample has rates %v", s.Rates)
			}
			continue
		}
		if s.Interval <= 0 {
			t.Fatalf("sample %d interval %v", i, s.Interval)
		}
		for key, perScrape := range map[string]float64{"packets_sent": 1000, "bytes_sent": 1e6, "drops/bad_cookie": 1, "packets_received": 0} {
			if got := s.Rates[key] * s.Interval; math.Abs(got-perScrape) > 1e-6*max(1, perScrape) {
				t.Errorf("sample %d: rate of %s × interval = %v, want %v", i, key, got, perScrape)
			}
		}
	}
}

func TestStatTable(t *testing.T) {
	srv := statServer(t)
	url := srv.URL + "/metrics"
	code, out, errOut := runStatTest(t, "--url", url, "--interval", "5ms", "--count", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	// Title, raptor totals, limits, relay totals, header, then per row: the
	// row, its drops line and its limits line.
	if len(lines) != 11 {
		t.Fatalf("%d lines, want 11:\n%s", len(lines), out)
	}
	for i, want := range []string{
		"raptor stat: " + url + " (endpoint test) every 5ms",
		"  raptor: 1000 pkts tx, 0 rx, 1.00MB tx, 0B rx, 0 retransmits, 0 RTOs, 0 NAKs tx, 0 rx, 1 drops (bad_cookie=1); 3 sessions (2 live), 0 streams (0 live); srtt 2.00ms, cwnd 64.0KB",
		"  limits: memory=2",
		"  relay: 0 connections (0 active), 0B up, 0B down, 0 upstream errors",
	} {
		if lines[i] != want {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], want)
		}
	}
	header := strings.Fields(lines[4])
	if header[0] != "time" || !strings.Contains(lines[4], "tx pkt/s") || !strings.Contains(lines[4], "| conns") {
		t.Errorf("header %q", lines[4])
	}
	for _, i := range []int{5, 8} {
		f := strings.Fields(lines[i])
		// time, tx pkt/s, rx pkt/s, tx MB/s, rx MB/s, retx, rto, nak, drop, sess, strm, srtt, cwnd, inflight, bufs | relay...
		if len(f) != 21 || f[2] != "0" || f[9] != "2" || f[11] != "2.00ms" || f[12] != "64.0KB" || f[13] != "1.5KB" || f[14] != "8.2KB" || f[15] != "|" {
			t.Errorf("row %q (%d fields)", lines[i], len(f))
		}
		if !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "drops/s: bad_cookie=") {
			t.Errorf("drops line %q", lines[i+1])
		}
		if !strings.HasPrefix(strings.TrimSpace(lines[i+2]), "per second: limits: memory=") {
			t.Errorf("limits line %q", lines[i+2])
		}
	}
}

func TestStatErrors(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String() + "/metrics"
	dead.Close()
	empty := httptest.NewServer(promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}))
	defer empty.Close()
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--url", "ftp://x/metrics"}, 2, `--url "ftp://x/metrics"`},
		{[]string{"--interval", "0s"}, 2, "--interval 0s must be positive"},
		{[]string{"--count", "-1"}, 2, "--count -1"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--url", deadURL, "--count", "1"}, 1, "scrape " + deadURL},
		{[]string{"--url", empty.URL, "--count", "1"}, 1, "no raptor_* metrics"},
		{[]string{"--url", missing.URL + "/metrics", "--count", "1"}, 1, "HTTP status 404"},
	} {
		code, _, errOut := runStatTest(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

func TestStatRatesCounterReset(t *testing.T) {
	t0 := time.Now()
	prev := &statSample{Time: t0, Counters: map[string]float64{"packets_sent": 500, "rtos": 2}}
	cur := &statSample{Time: t0.Add(2 * time.Second), Counters: map[string]float64{"packets_sent": 100, "rtos": 6, "new": 1}}
	cur.rates(prev)
	if cur.Interval != 2 || cur.Rates["packets_sent"] != 50 || cur.Rates["rtos"] != 2 {
		t.Errorf("interval %v rates %v", cur.Interval, cur.Rates)
	}
	if _, ok := cur.Rates["new"]; ok {
		t.Errorf("a counter absent before has a rate: %v", cur.Rates)
	}
}

var metricsLine = regexp.MustCompile(`metrics on (http://\S+)`)

// metricsURL waits for the metrics line in out (written before ready).
func metricsURL(t *testing.T, out *clitest.Buffer) string {
	t.Helper()
	m := metricsLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no metrics line in %q", out.String())
	}
	return m[1]
}

// TestRelayMetricsFlag runs proxy (TCP in) -> gateway (Raptor in) -> TCP
// echo server, both with --metrics, sends data through, and reads both
// endpoints with raptor stat.
func TestRelayMetricsFlag(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	echo := tcpEchoServer(t)
	start := func(spec relaySpec, listen, upstream string) (string, *clitest.Buffer, chan int, context.CancelFunc) {
		rctx, stop := context.WithCancel(ctx)
		var out, errOut clitest.Buffer
		ready := make(chan string, 1)
		done := make(chan int, 1)
		go func() {
			done <- relayMain(rctx, ctx, spec, []string{"--listen", listen, "--upstream", upstream, "--framing", "raw", "--metrics", "127.0.0.1:0"},
				&out, &errOut, func(_ *plugin.Relay, addr string) { ready <- addr })
		}()
		select {
		case addr := <-ready:
			return addr, &out, done, stop
		case code := <-done:
			t.Fatalf("%s exited %d: %s", spec.name, code, errOut.String())
		}
		panic("unreachable")
	}
	gwAddr, gwOut, gwDone, stopGw := start(gatewaySpec, "raptor://127.0.0.1:0", "tcp://"+echo.Addr().String())
	pxAddr, pxOut, pxDone, stopPx := start(proxySpec, "tcp://127.0.0.1:0", "raptor://"+gwAddr)

	const size = 64 << 10
	c, err := net.Dial("tcp", pxAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	go c.Write(make([]byte, size))
	if n, err := io.ReadFull(c, make([]byte, size)); err != nil {
		t.Fatalf("echo through proxy and gateway: %d bytes, %v", n, err)
	}
	c.Close()

	code, out, errOut := runStatTest(t, "--url", metricsURL(t, gwOut), "--count", "1", "--json")
	if code != 0 {
		t.Fatalf("stat gateway: exit %d: %s", code, errOut)
	}
	gw := decodeSamples(t, out)[0]
	if gw.Counters["stream_bytes_received"] != size || gw.Counters["sessions_opened"] != 1 || gw.Counters["packets_received"] == 0 ||
		gw.Counters["relay_accepted"] != 1 || len(gw.Endpoints) != 1 || gw.Endpoints[0] != "gateway" {
		t.Errorf("gateway sample %+v", gw)
	}
	code, out, errOut = runStatTest(t, "--url", metricsURL(t, pxOut), "--count", "1", "--json")
	if code != 0 {
		t.Fatalf("stat proxy: exit %d: %s", code, errOut)
	}
	px := decodeSamples(t, out)[0]
	// The proxy's Raptor side is the sessions its transport dialed.
	if px.Counters["packets_sent"] == 0 || px.Counters["stream_bytes_sent"] != size || px.Counters["relay_accepted"] != 1 ||
		len(px.Endpoints) != 1 || px.Endpoints[0] != "proxy" {
		t.Errorf("proxy sample %+v", px)
	}
	stopPx()
	stopGw()
	for name, done := range map[string]chan int{"proxy": pxDone, "gateway": gwDone} {
		if code := <-done; code != 0 {
			t.Errorf("%s exited %d", name, code)
		}
	}
}

// tcpEchoServer is a TCP echo server on 127.0.0.1 (each conn echoed until
// its client closes), closed when the test ends.
func tcpEchoServer(t *testing.T) net.Listener {
	t.Helper()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return echo
}
