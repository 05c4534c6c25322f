package benchkit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// saved is the archive form of a result (`--save`): the public JSON fields
// plus everything the table and the targets need. Unlike `--json`, its
// fields may grow.
type saved struct {
	Result
	Reply     int     `json:"reply,omitempty"`
	Sent      int64   `json:"sent"`
	Received  int64   `json:"received"`
	GCs       uint64  `json:"gcs"`
	Allocs    float64 `json:"allocs_per_msg"`
	ElapsedNs int64   `json:"elapsed_ns"`
	Condition string  `json:"condition,omitempty"`
	IdleCPU   float64 `json:"idle_cpu_pct,omitempty"`
	IdleBytes float64 `json:"idle_bytes_per_conn,omitempty"`
}

// SaveResults appends rs to the archive file path (JSON lines).
func SaveResults(path string, rs []Result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("bench: save results: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, r := range rs {
		s := saved{Result: r, Reply: r.Reply, Sent: r.Sent, Received: r.Received, GCs: r.GCs, Allocs: r.AllocsPerMsg,
			ElapsedNs: int64(r.Elapsed), Condition: r.Condition, IdleCPU: r.IdleCPUPct, IdleBytes: r.IdleBytesPerConn}
		if err := enc.Encode(s); err != nil {
			f.Close()
			return fmt.Errorf("bench: save results to %s: %w", path, err)
		}
	}
	return f.Close()
}

// LoadResults reads an archive written by [SaveResults].
func LoadResults(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bench: load results: %w", err)
	}
	defer f.Close()
	return readSaved(f, path)
}

func readSaved(r io.Reader, name string) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var s saved
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("bench: %s line %d: %w", name, line, err)
		}
		r := s.Result
		r.Reply, r.Sent, r.Received, r.GCs, r.AllocsPerMsg = s.Reply, s.Sent, s.Received, s.GCs, s.Allocs
		r.Elapsed, r.Condition = time.Duration(s.ElapsedNs), s.Condition
		r.IdleCPUPct, r.IdleBytesPerConn = s.IdleCPU, s.IdleBytes
		out = append(out, r)
	}
	return out, sc.Err()
}

// find returns the result of suite/transport/size under condition.
func find(rs []Result, suite, transport string, size int, condition string) (Result, bool) {
	for _, r := range rs {
		if r.Suite == suite && r.Transport == transport && r.Size == size && r.Condition == condition {
			return r, true
		}
	}
	return Result{}, false
}

// WriteTargets writes, as a Markdown list, how Raptor's results compare with
// the targets of issue 3, computed from results of one comparison run.
// Lossy results are found under the conditions lossy1 and lossy5. Targets
// whose inputs are missing are listed as not measured.
func WriteTargets(w io.Writer, rs []Result, lossy1, lossy5 string) {
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	ratio := func(desc string, a, b float64, want string, ok func(float64) bool) {
		if a == 0 || b == 0 {
			fmt.Fprintf(w, "- %s: not measured\n", desc)
			return
		}
		v := a / b
		fmt.Fprintf(w, "- %s: %.2f× (aim %s) — %s\n", desc, v, want, verdict(ok(v)))
	}
	le := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	ge := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	for _, size := range []int{64, 1024} {
		r, _ := find(rs, SuiteRTT, "raptor", size, "")
		u, _ := find(rs, SuiteRTT, "udp", size, "")
		ratio(fmt.Sprintf("RTT %d B p50, raptor ÷ raw udp (%s ÷ %s µs)", size, fmtNum(r.P50us), fmtNum(u.P50us)), r.P50us, u.P50us, "≤ 1.3×", le(1.3))
		ratio(fmt.Sprintf("RTT %d B p99, raptor ÷ raw udp (%s ÷ %s µs)", size, fmtNum(r.P99us), fmtNum(u.P99us)), r.P99us, u.P99us, "≤ 1.5×", le(1.5))
	}
	for _, c := range []struct {
		size    int
		peer    string
		want    string
		atLeast float64
	}{{64, "tcp", "≥ 3×", 3}, {64, "quic", "≥ 2×", 2}, {1024, "tcp", "≥ 0.5×", 0.5}, {1024, "quic", "≥ 3×", 3}} {
		r, _ := find(rs, SuiteThroughput, "raptor", c.size, "")
		p, _ := find(rs, SuiteThroughput, c.peer, c.size, "")
		ratio(fmt.Sprintf("throughput %d B, raptor ÷ %s (%s ÷ %s msgs/s; CPU µs/msg %s vs %s)", c.size, c.peer,
			fmtNum(r.MsgsPerS), fmtNum(p.MsgsPerS), fmtNum(r.CPUSPerMMsg), fmtNum(p.CPUSPerMMsg)), r.MsgsPerS, p.MsgsPerS, c.want, ge(c.atLeast))
	}
	abs := func(desc string, v float64, limitUs float64) {
		if v == 0 {
			fmt.Fprintf(w, "- %s: not measured\n", desc)
			return
		}
		fmt.Fprintf(w, "- %s: %.1f ms (aim ≤ %.0f ms) — %s\n", desc, v/1e3, limitUs/1e3, verdict(v <= limitUs))
	}
	if lossy1 != "" {
		r, _ := find(rs, SuiteRTT, "raptor", 1024, lossy1)
		t, _ := find(rs, SuiteRTT, "tcp", 1024, lossy1)
		abs("RTT 1 KiB p99 at "+lossy1+", raptor (tcp: "+fmtNum(t.P99us/1e3)+" ms)", r.P99us, 10e3)
		abs("RTT 1 KiB p99.9 at "+lossy1+", raptor (tcp: "+fmtNum(t.P999us/1e3)+" ms)", r.P999us, 20e3)
	}
	if lossy5 != "" {
		r, _ := find(rs, SuiteRTT, "raptor", 1024, lossy5)
		t, _ := find(rs, SuiteRTT, "tcp", 1024, lossy5)
		abs("RTT 1 KiB p99 at "+lossy5+", raptor (tcp: "+fmtNum(t.P99us/1e3)+" ms)", r.P99us, 20e3)
	}
	if lossy1 != "" {
		r, _ := find(rs, SuiteKafka, "raptor", 64, lossy1)
		t, _ := find(rs, SuiteKafka, "tcp", 64, lossy1)
		abs("Kafka end to end p99 at "+lossy1+", raptor (tcp: "+fmtNum(t.P99us/1e3)+" ms)", r.P99us, 10e3)
	}
	r, _ := find(rs, SuiteKafka, "raptor", 64, "")
	t, _ := find(rs, SuiteKafka, "tcp", 64, "")
	ratio(fmt.Sprintf("Kafka end to end p50, raptor ÷ tcp (%s ÷ %s µs)", fmtNum(r.P50us), fmtNum(t.P50us)), r.P50us, t.P50us, "≤ 1.1×", le(1.1))
	ratio(fmt.Sprintf("Kafka end to end p99, raptor ÷ tcp (%s ÷ %s µs)", fmtNum(r.P99us), fmtNum(t.P99us)), r.P99us, t.P99us, "≤ 1.5×", le(1.5))
	if r, ok := find(rs, SuiteIdle, "raptor", minSize, ""); ok {
		fmt.Fprintf(w, "- idle sessions, raptor: %.3f%% of a core for %d idle sessions (aim: no CPU) — %s\n",
			r.IdleCPUPct, r.Sent, verdict(r.IdleCPUPct < 0.5))
		kib := r.IdleBytesPerConn / 2 / 1024
		fmt.Fprintf(w, "- memory per idle session, raptor: %.1f KiB (half of both ends' live heap per conn; aim ≤ 64 KiB) — %s\n",
			kib, verdict(kib <= 64))
	} else {
		fmt.Fprintln(w, "- idle sessions, raptor: not measured")
	}
}
