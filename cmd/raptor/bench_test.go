package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchIsRegistered(t *testing.T) {
	if _, ok := commands["bench"]; !ok {
		t.Fatal("bench is not registered")
	}
}

func TestBenchRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "rtt", "--size", "0"},
		{"bench", "rtt", "--transport", "kcp"}, // a peer of the bench/ module, not of this binary
		{"bench", "throughput", "--duration", "-1s"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 {
			t.Fatalf("%v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), "bench:") {
			t.Fatalf("%v: stderr %q does not say what failed", args, stderr.String())
		}
	}
}

func TestBenchRTTJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"bench", "rtt", "--transport", "tcp,udp,raptor", "--size", "64", "--count", "100", "--warmup", "10", "--json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one JSON object per transport, got:\n%s", stdout.String())
	}
	for i, want := range []string{"tcp", "udp", "raptor"} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
		if m["transport"] != want || m["suite"] != "rtt" || len(m) != 12 {
			t.Fatalf("line %d: %v", i, m)
		}
	}
}
