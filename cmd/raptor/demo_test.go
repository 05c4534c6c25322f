package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestDemoJSON runs `raptor demo --messages 20000 --json` in process.
func TestDemoJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--messages", "20000", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	var rep demoReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if !rep.OK || len(rep.Results) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Received != 20000 || r.Lost != 0 || r.Duplicated != 0 || r.ProduceErrors != 0 || r.RecordsPerSec <= 0 || r.LatencyUs.P50 <= 0 {
			t.Errorf("%s: %+v", r.Transport, r)
		}
		t.Logf("%s: %.0f records/s, p50 %.0f µs, p99 %.0f µs, p99.9 %.0f µs", r.Transport, r.RecordsPerSec, r.LatencyUs.P50, r.LatencyUs.P99, r.LatencyUs.P999)
	}
	if !strings.Contains(errb.String(), "raptor  [####") {
		t.Errorf("no progress bar on stderr:\n%s", errb.String())
	}
}

func TestDemoWithLossTable(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--messages", "5000", "--loss", "5", "--paths", "raptor", "--no-progress"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Raptor", "records/s", "latency p99.9", "dropped pkts", "OK: every record arrived exactly once"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if errb.Len() != 0 {
		t.Errorf("stderr with --no-progress: %q", errb.String())
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"demo", "--loss", "80"},
		{"demo", "--messages", "0"},
		{"demo", "--paths", "quic"},
		{"demo", "--size", "8"},
		{"demo", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, errb.String())
		}
	}
}

func TestDemoTableReportsFailure(t *testing.T) {
	var out bytes.Buffer
	printDemoTable(&out, &demoReport{Messages: 10, Size: 100, Partitions: 1, Broker: "127.0.0.1:1", Results: []demoResult{
		{Transport: "tcp", Produced: 10, Received: 10},
		{Transport: "raptor", Produced: 10, Received: 7, Lost: 3, Duplicated: 1, FirstError: "consumer group got no partitions"},
	}})
	for _, want := range []string{"FAILED raptor: 3 lost, 1 duplicated, 0 produce errors (first: consumer group got no partitions)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "OK:") {
		t.Errorf("failed report says OK:\n%s", out.String())
	}
}
