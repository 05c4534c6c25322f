package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/raptormq/raptor/internal/benchkit"
)

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"rtt", "--size", "0"},
		{"rtt", "--transport", "kcp"}, // a peer of the bench/ module, not of this binary
		{"throughput", "--duration", "-1s"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runBench(args, &stdout, &stderr); code != 2 {
			t.Fatalf("%v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "bench:") {
			t.Fatalf("%v: stderr %q does not say what failed", args, stderr.String())
		}
	}
}

// Every JSON result of `bench rtt` carries measured values: a latency, a
// rate and a CPU cost above zero, ordered percentiles, no loss on a
// reliable transport.
func TestBenchRTTJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	names := []string{"tcp", "tcp-buffered", "tcp+tls", "tcp+tls-buffered", "udp", "raptor"}
	code := runBench([]string{"rtt", "--transport", strings.Join(names, ","), "--size", "64", "--count", "200", "--warmup", "10", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(names) {
		t.Fatalf("want one JSON object per transport, got:\n%s", stdout.String())
	}
	for i, want := range names {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
		if m["transport"] != want || m["suite"] != "rtt" || m["size"] != 64.0 || len(m) != 14 {
			t.Fatalf("line %d: %v", i, m)
		}
		num := func(k string) float64 { v, _ := m[k].(float64); return v }
		for _, k := range []string{"p50_us", "p90_us", "p99_us", "p999_us", "max_us", "msgs_per_s", "cpu_s_per_mmsg"} {
			if num(k) <= 0 {
				t.Errorf("%s: %s = %v, want > 0", want, k, m[k])
			}
		}
		if !(num("p50_us") <= num("p99_us") && num("p99_us") <= num("max_us")) {
			t.Errorf("%s: percentiles out of order: %v", want, m)
		}
		if want != "udp" && (num("loss_pct") != 0 || num("duplicated") != 0) {
			t.Errorf("%s: loss %v%%, %v duplicated on a reliable transport", want, m["loss_pct"], m["duplicated"])
		}
		if _, err := benchkit.ProcessSyscalls(); err == nil && num("syscalls_per_msg") < 2 {
			t.Errorf("%s: syscalls_per_msg %v with a syscall counter, want ≥ 2", want, m["syscalls_per_msg"])
		}
	}
}

// The raptor binary draws no charts: --plot says so.
func TestBenchPlotRefused(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runBench([]string{"rtt", "--plot", "x.png"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "draws no charts") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
