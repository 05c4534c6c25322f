package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestLoopsCountsEveryMessage runs the loops suite briefly with 1 and 2
// receive loops, Raptor and Raptor without packet protection: the run
// itself fails unless every byte written arrives once every stream has
// ended; the result must account for every session on some loop and for
// packets on the loops that hold sessions.
func TestLoopsCountsEveryMessage(t *testing.T) {
	for _, tr := range []Named{&Raptor{}, newRaptorPlaintext()} {
		for _, tc := range []struct{ loops, sessions, size int }{{1, 3, 64}, {2, 8, 1024}} {
			t.Run(fmt.Sprintf("%s/loops=%d/sessions=%d/%dB", tr.Name(), tc.loops, tc.sessions, tc.size), func(t *testing.T) {
				o := Options{Size: tc.size, Duration: 150 * time.Millisecond, Timeout: 2 * time.Minute}
				r, err := RunLoops(context.Background(), tr, tc.loops, o, LoopsOptions{Sessions: tc.sessions, Settle: 50 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				if r.Suite != SuiteLoops || r.ReceiveLoops != tc.loops || r.Sessions != tc.sessions || !strings.HasPrefix(r.Transport, tr.Name()+"×") {
					t.Fatalf("result names %q %q, %d loops, %d sessions", r.Suite, r.Transport, r.ReceiveLoops, r.Sessions)
				}
				if r.Received <= 0 || r.MsgsPerS <= 0 || r.MBPerS <= 0 || r.CPUSPerMMsg <= 0 {
					t.Fatalf("nothing measured: %+v", r)
				}
				if !strings.Contains(r.Notes, "retransmits ") || !strings.Contains(r.Notes, "RTOs ") {
					t.Errorf("notes %q lack the transport's counters", r.Notes)
				}
				if len(r.LoopSessions) != tc.loops || len(r.LoopPackets) != tc.loops {
					t.Fatalf("per-loop figures %v %v for %d loops", r.LoopSessions, r.LoopPackets, tc.loops)
				}
				total, packets := 0, uint64(0)
				for i, n := range r.LoopSessions {
					total += n
					packets += r.LoopPackets[i]
				}
				if total != tc.sessions || packets == 0 {
					t.Fatalf("sessions per loop %v sum to %d (want %d), packets per loop %v", r.LoopSessions, total, tc.sessions, r.LoopPackets)
				}
			})
		}
	}
}

func TestLoopsRejectsOtherTransports(t *testing.T) {
	if _, err := RunLoops(context.Background(), TCP{}, 2, Options{}, LoopsOptions{}); err == nil || !strings.Contains(err.Error(), "not built on package reliable") {
		t.Fatalf("loops over tcp: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"loops", "--transport", "tcp"}, `--transport "tcp": the loops suite measures a Raptor listener`},
		{[]string{"loops", "--receive-loops", "0"}, `--receive-loops "0": not a whole number in [1, 256]`},
		{[]string{"loops", "--receive-loops", "two"}, `--receive-loops "two"`},
		{[]string{"loops", "--receive-loops", ","}, `--receive-loops ",": no loop count given`},
		{[]string{"loops", "--sessions", "0"}, `--sessions "0": outside [1, 1024]`},
		{[]string{"loops", "--repeat", "0"}, `--repeat "0": outside [1, 100]`},
		{[]string{"loops", "--remote", "10.0.0.1:7000"}, `--remote "10.0.0.1:7000": the loops suite runs its listener and clients in one process`},
	} {
		_, err := ParseArgs("raptor bench", tc.args, Default(), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
	cfg, err := ParseArgs("raptor bench", []string{"loops"}, Default(), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Transports) != 1 || cfg.Transports[0].Name() != "raptor" || fmt.Sprint(cfg.Loops.Loops) != "[1 2]" || cfg.Loops.Sessions != 8 {
		t.Fatalf("loops defaults: %d transports, loops %v, %d sessions", len(cfg.Transports), cfg.Loops.Loops, cfg.Loops.Sessions)
	}
}

func TestLoopsSummary(t *testing.T) {
	rs := []Result{
		{Suite: SuiteThroughput, Transport: "raptor", Size: 64, MsgsPerS: 1},
		{Suite: SuiteLoops, Transport: "raptor×1 loop", Size: 1024, ReceiveLoops: 1, Sessions: 8, MsgsPerS: 1e5, CPUSPerMMsg: 4,
			LoopSessions: []int{8}, LoopPackets: []uint64{1000}},
		{Suite: SuiteLoops, Transport: "raptor×2 loops", Size: 1024, ReceiveLoops: 2, Sessions: 8, MsgsPerS: 1.7e5, CPUSPerMMsg: 3,
			LoopSessions: []int{3, 5}, LoopPackets: []uint64{300, 700}},
	}
	var buf bytes.Buffer
	WriteLoopsSummary(&buf, rs)
	for _, want := range []string{
		"raptor×1 loop 1024 B, 8 sessions: sessions per loop [8], packets received per loop [100%], process busy 0.40 cores\n",
		"raptor×2 loops 1024 B, 8 sessions: sessions per loop [3 5], packets received per loop [30% 70%], process busy 0.51 cores; 1.70× the msgs/s of 1 loop(s), 0.75× the CPU µs/msg\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), "median") {
		t.Errorf("medians of single runs:\n%s", buf.String())
	}
	buf.Reset()
	WriteLoopsSummary(&buf, rs[:1])
	if buf.Len() != 0 {
		t.Errorf("summary without loops results: %q", buf.String())
	}

	// --repeat 3: each 2-loop run is compared with the 1-loop run just
	// before it; the medians are of the runs and of the pairs' ratios.
	var reps []Result
	for _, p := range [][2]float64{{100, 150}, {200, 260}, {50, 100}} {
		reps = append(reps,
			Result{Suite: SuiteLoops, Transport: "raptor×1 loop", Size: 64, ReceiveLoops: 1, Sessions: 8, MsgsPerS: p[0], CPUSPerMMsg: 1},
			Result{Suite: SuiteLoops, Transport: "raptor×2 loops", Size: 64, ReceiveLoops: 2, Sessions: 8, MsgsPerS: p[1], CPUSPerMMsg: 2})
	}
	buf.Reset()
	WriteLoopsSummary(&buf, reps)
	for _, want := range []string{
		"; 1.30× the msgs/s of 1 loop(s)",
		"median of 3: raptor×1 64 B: 100 msgs/s, 0.01 MB/s, 1.00 CPU µs/msg\n",
		"median of 3: raptor×2 64 B: 150 msgs/s, 0.01 MB/s, 2.00 CPU µs/msg; 1.50× 1 loop(s) (median of the 3 pairs' ratios)\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestLoopsCommandLine runs `bench loops --repeat 2` end to end: four runs
// in the table (1, 2, 1, 2 loops), the spread of each and the medians.
func TestLoopsCommandLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"loops", "--size", "64", "--sessions", "2", "--duration", "50ms", "--repeat", "2", "--no-progress"}
	if code := Main("raptor bench", args, &stdout, &stderr, Default()); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for want, n := range map[string]int{"raptor×1 loop ": 4, "raptor×2 loops ": 4, "median of 2: ": 2, "sessions per loop": 4} {
		if got := strings.Count(out, want); got != n {
			t.Errorf("%q %d times, want %d:\n%s", want, got, n, out)
		}
	}
}
