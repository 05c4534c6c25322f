package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestDemoJSON runs `raptor-demo --messages 20000 --json` in process.
func TestDemoJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := runDemo([]string{"--messages", "20000", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	var rep demoReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if !rep.OK || len(rep.Results) != 2 || rep.Window != defaultDemoWindow {
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

// With --loss in-process, the JSON says datagrams were dropped and
// retransmitted, and the retransmits are both ends' sum.
func TestDemoWithLossJSON(t *testing.T) {
	var out, errb bytes.Buffer
	code := runDemo([]string{"--messages", "5000", "--loss", "5", "--loss-mode", "inprocess", "--seed", "7", "--paths", "raptor", "--no-progress", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep demoReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if len(rep.Results) != 1 || rep.LossMode != lossInProcess {
		t.Fatalf("report %+v", rep)
	}
	r := rep.Results[0]
	if r.Received != 5000 || r.Lost != 0 || r.Duplicated != 0 || r.DatagramsSent == 0 || r.DatagramsDropped == 0 ||
		r.Retransmits == 0 || r.Retransmits != r.RetransmitsBroker+r.RetransmitsClient {
		t.Fatalf("5%% loss: %+v", r)
	}
	t.Logf("%d of %d datagrams dropped; %d retransmits (broker %d, client %d)", r.DatagramsDropped, r.DatagramsSent, r.Retransmits, r.RetransmitsBroker, r.RetransmitsClient)
	if errb.Len() != 0 {
		t.Errorf("stderr with --no-progress: %q", errb.String())
	}
}

// As root, --loss drops the same share of packets on both paths, through a
// lossy link between two network namespaces; TCP recovers too.
func TestDemoWithLossNetns(t *testing.T) {
	if why := lossNetnsUnavailable(); why != "" {
		t.Skipf("--loss-mode netns: %s", why)
	}
	var out, errb bytes.Buffer
	// 10,000 records in windows of 100: some 25 packets dropped on each path, so
	// that none dropped (or only pure ACKs) is out of the question.
	code := runDemo([]string{"--messages", "10000", "--window", "100", "--loss", "5", "--loss-mode", "netns", "--no-progress", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var rep demoReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if rep.LossMode != lossNetns || len(rep.Results) != 2 || !strings.HasPrefix(rep.Broker, netnsBrokerIP+":") {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Received != 10000 || r.Lost != 0 || r.Duplicated != 0 || r.PacketsDropped == 0 || r.Retransmits == 0 {
			t.Errorf("%s: %+v", r.Transport, r)
		}
	}
}

// Without root, auto mode says that it applied the loss to Raptor only.
func TestDemoLossNoteWithoutNetns(t *testing.T) {
	var out bytes.Buffer
	printDemoTable(&out, &demoReport{Messages: 10, Size: 100, Partitions: 1, LossPct: 5, LossMode: lossInProcess, Seed: 3,
		LossNote: "cannot apply the loss to both paths: not running as root; TCP ran loss-free", Broker: "127.0.0.1:1", OK: true,
		Results: []demoResult{{Transport: "tcp", Produced: 10, Received: 10}, {Transport: "raptor", Produced: 10, Received: 10, PacketsDropped: 4}}})
	for _, want := range []string{"loss each way on Raptor's datagrams only, in-process (seed 3)", "NOTE: cannot apply the loss to both paths: not running as root; TCP ran loss-free."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// The demo's counting reports an injected duplicate (produced again after
// the last record, so only the drain can see it) and an injected loss.
func TestDemoCountsInjectedFaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         demoFaults
		lost, dup int
	}{
		{"late duplicate", demoFaults{drop: -1, dup: 3}, 0, 1},
		{"lost record", demoFaults{drop: 250, dup: -1}, 1, 0},
		{"one of each", demoFaults{drop: 250, dup: 3}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			cfg := demoConfig{messages: 500, size: 100, partitions: 2, paths: []string{"tcp"}, stall: 3 * time.Second, window: 100, faults: &f}
			rep, err := runDemoPaths(context.Background(), cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			r := rep.Results[0]
			if rep.OK || r.Lost != tc.lost || r.Duplicated != tc.dup || r.Received != 500-tc.lost || r.Produced != 500 {
				t.Fatalf("ok %v, %+v; want %d lost, %d duplicated", rep.OK, r, tc.lost, tc.dup)
			}
			var out bytes.Buffer
			printDemoTable(&out, rep)
			if want := fmt.Sprintf("FAILED tcp: %d lost, %d duplicated", tc.lost, tc.dup); !strings.Contains(out.String(), want) {
				t.Fatalf("table lacks %q:\n%s", want, out.String())
			}
		})
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--loss", "80"},
		{"--messages", "0"},
		{"--paths", "quic"},
		{"--size", "8"},
		{"extra"},
		{"--window", "0"},
		{"--loss-mode", "tc"},
	} {
		var out, errb bytes.Buffer
		if code := runDemo(args, &out, &errb); code != 2 || errb.Len() == 0 {
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
