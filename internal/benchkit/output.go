package benchkit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where a run happened, for the header of every report.
type Machine struct {
	Cores     int
	GoVersion string
	OS, Arch  string
	Kernel    string
	CPU       string
	Load      string // 1, 5 and 15 minute load averages
	Time      time.Time
}

// ThisMachine reads the machine description now.
func ThisMachine() Machine {
	m := Machine{
		Cores: runtime.NumCPU(), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Time: time.Now().UTC(),
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Header is the one-line description of the machine printed above results.
func (m Machine) Header() string {
	s := fmt.Sprintf("# %s · %d cores · %s %s/%s", m.Time.Format(time.RFC3339), m.Cores, m.GoVersion, m.OS, m.Arch)
	if m.Kernel != "" {
		s += " · linux " + m.Kernel
	}
	if m.CPU != "" {
		s += " · " + m.CPU
	}
	if m.Load != "" {
		s += " · load " + m.Load
	}
	return s
}

// WriteJSON writes one JSON object per result, one per line, with exactly
// the fields of [Result]'s JSON form.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// tableHeader names the columns of WriteTable and WriteMarkdown.
var tableHeader = []string{"suite", "transport", "size", "n", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs",
	"msgs/s", "MB/s", "CPU µs/msg", "syscalls/msg", "allocs/msg", "GCs", "loss %", "dup"}

// cells formats one result as the columns of tableHeader (fields that do not
// apply to its suite show "-").
func cells(r Result) []string {
	size := fmt.Sprint(r.Size)
	if r.Reply != 0 {
		size = fmt.Sprintf("%d/%d", r.Size, r.Reply)
	}
	lat := func(v float64) string {
		if r.MaxUs == 0 {
			return "-"
		}
		return fmtNum(v)
	}
	mb := "-"
	if r.MBPerS > 0 {
		mb = fmtNum(r.MBPerS)
	}
	sys := "-" // not counted (see ProcessSyscalls)
	if r.SyscallsPerMsg > 0 {
		sys = fmtNum(r.SyscallsPerMsg)
	}
	return []string{r.Suite, r.Transport, size, fmt.Sprint(r.Received),
		lat(r.P50us), lat(r.P90us), lat(r.P99us), lat(r.P999us), lat(r.MaxUs),
		fmtNum(r.MsgsPerS), mb, fmtNum(r.CPUSPerMMsg), sys, fmtNum(r.AllocsPerMsg), fmt.Sprint(r.GCs), fmt.Sprintf("%.2f", r.LossPct), fmt.Sprint(r.Duplicated)}
}

// WriteTable writes results as an aligned table (fields that do not apply to
// a suite show "-"); n is the number of messages (round trips, records)
// measured where they were received.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t")+"\t")
	for _, r := range rs {
		if r.Suite == SuiteIdle {
			continue // WriteIdleMarkdown
		}
		fmt.Fprintln(tw, strings.Join(cells(r), "\t")+"\t")
	}
	return tw.Flush()
}

// FormatNum prints v with about three significant digits, as every table
// and chart of the bench does.
func FormatNum(v float64) string { return fmtNum(v) }

// fmtNum prints v with about three significant digits.
func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// WriteMarkdown writes results as a Markdown table.
func WriteMarkdown(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| "+strings.Join(tableHeader, " | ")+" |")
	fmt.Fprintln(w, "|---|---|"+strings.Repeat("--:|", len(tableHeader)-2))
	for _, r := range rs {
		if r.Suite == SuiteIdle {
			continue // WriteIdleMarkdown
		}
		fmt.Fprintln(w, "| "+strings.Join(cells(r), " | ")+" |")
	}
}
