// Command testfilter reads `go test -json` on stdin and prints what a plain
// `go test` would (the ok/FAIL/PASS line of each package, the output of
// failing tests, benchmark results), then every skipped test with its
// reason. With -strict (the default when CI=true) it fails when a test
// skipped that the allow-list does not excuse: CI must never lose a test
// silently (a root-only test skipping while running as root, say).
//
//	go test -json ./... | go run ./scripts/testfilter -allow scripts/skips.allow
//
// The allow-list has one skip per line: a regexp matched against the whole
// "import/path.TestName/subtest", when it is excused ("always"; "nonroot":
// only when not running as root; "race": only in a pass marked -race), and
// why. Lines starting with #
// are comments. Exit status: 0, or 1 when a test or package failed, a skip
// is not excused under -strict, or the input could not be read.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skip is one skipped test.
type skip struct {
	Name   string // import/path.TestName
	Reason string
}

// rule excuses the skips whose name matches re.
type rule struct {
	re     *regexp.Regexp
	when   string // always, nonroot, race
	reason string
}

// summary is what a run of go test showed.
type summary struct {
	skips  []skip
	failed bool
}

// filter copies the plain go test view of r to w and returns the skips and
// whether anything failed.
func filter(r io.Reader, w io.Writer) (summary, error) {
	var s summary
	buf := map[string][]string{} // test → output lines so far
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line) // not an event (go vet, a build error): as is
			continue
		}
		key := e.Package + "." + e.Test
		switch e.Action {
		case "build-output":
			fmt.Fprint(w, e.Output)
		case "build-fail":
			s.failed = true
		case "output":
			switch {
			case e.Test == "":
				if !strings.HasPrefix(e.Output, "=== ") {
					fmt.Fprint(w, e.Output) // ok/FAIL/PASS, a panic, a timeout
				}
			case strings.HasPrefix(e.Test, "Benchmark") && !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(e.Output, "--- "):
				fmt.Fprint(w, e.Output) // a benchmark's name and result (they may come as two events)
			default:
				buf[key] = append(buf[key], e.Output)
			}
		case "fail":
			if e.Test == "" {
				s.failed = true
				unfinished(w, buf, e.Package)
				continue
			}
			s.failed = true
			for _, o := range buf[key] {
				fmt.Fprint(w, o)
			}
			delete(buf, key)
		case "skip":
			if e.Test == "" {
				continue // a package without tests
			}
			s.skips = append(s.skips, skip{Name: key, Reason: reason(buf[key])})
			delete(buf, key)
		case "pass":
			delete(buf, key)
		}
	}
	return s, sc.Err()
}

// unfinishedLines bounds what unfinished prints of one test: a goroutine
// dump can run to many thousands of lines.
const unfinishedLines = 2000

// unfinished prints, for a package that failed, the output of its tests
// that never finished: a test binary killed by -timeout or a signal (its
// panic and goroutine dump go to the test that was running) would
// otherwise fail with no word of where it hung.
func unfinished(w io.Writer, buf map[string][]string, pkg string) {
	var keys []string
	for k := range buf {
		if strings.HasPrefix(k, pkg+".") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out := buf[k]
		fmt.Fprintf(w, "--- UNFINISHED: %s (the package failed while it ran; its last %d lines of output)\n", k, min(len(out), unfinishedLines))
		for _, o := range out[max(0, len(out)-unfinishedLines):] {
			fmt.Fprint(w, o)
		}
		delete(buf, k)
	}
}

// reason joins a skipped test's own log lines ("    x_test.go:12: why").
func reason(out []string) string {
	var rs []string
	for _, o := range out {
		o = strings.TrimSpace(o)
		if o == "" || strings.HasPrefix(o, "=== ") || strings.HasPrefix(o, "--- ") {
			continue
		}
		rs = append(rs, o)
	}
	if len(rs) == 0 {
		return "(no reason given)"
	}
	return strings.Join(rs, " / ")
}

func parseAllow(r io.Reader, name string) ([]rule, error) {
	var rules []rule
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[1] != "always" && f[1] != "nonroot" && f[1] != "race") {
			return nil, fmt.Errorf("%s:%d: want REGEXP always|nonroot|race REASON, got %q", name, n, line)
		}
		re, err := regexp.Compile("^(?:" + f[0] + ")$")
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		rules = append(rules, rule{re: re, when: f[1], reason: strings.Join(f[2:], " ")})
	}
	return rules, sc.Err()
}

// where a pass runs: as root, with the race detector.
type where struct{ root, race bool }

// excused returns the rule that excuses sk, or nil.
func excused(sk skip, rules []rule, w where) *rule {
	for i, r := range rules {
		if !r.re.MatchString(sk.Name) {
			continue
		}
		if r.when == "always" || (r.when == "nonroot" && !w.root) || (r.when == "race" && w.race) {
			return &rules[i]
		}
	}
	return nil
}

// report prints the skips and returns how many are not excused.
func report(w io.Writer, label string, skips []skip, rules []rule, at where) int {
	sort.Slice(skips, func(i, j int) bool { return skips[i].Name < skips[j].Name })
	fmt.Fprintf(w, "-- %s: %d skipped\n", label, len(skips))
	bad := 0
	for _, sk := range skips {
		mark := "  "
		if excused(sk, rules, at) == nil {
			mark, bad = "!!", bad+1
		}
		fmt.Fprintf(w, "%s SKIP %s: %s\n", mark, sk.Name, sk.Reason)
	}
	if bad > 0 {
		fmt.Fprintf(w, "-- %d skip(s) marked !! are not excused by the allow-list (root: %v, race pass: %v)\n", bad, at.root, at.race)
	}
	return bad
}

func main() {
	allow := flag.String("allow", "", "allow-list of skips (see the package comment)")
	label := flag.String("label", "go test", "name of this pass in the skip report")
	race := flag.Bool("race", false, "this pass runs with the race detector (excuses the \"race\" skips)")
	strict := flag.Bool("strict", os.Getenv("CI") == "true", "fail on a skip the allow-list does not excuse (default: CI=true)")
	flag.Parse()
	var rules []rule
	if *allow != "" {
		f, err := os.Open(*allow)
		if err == nil {
			rules, err = parseAllow(f, *allow)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "testfilter:", err)
			os.Exit(1)
		}
	}
	s, err := filter(os.Stdin, os.Stdout)
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "testfilter: reading go test -json:", err)
		os.Exit(1)
	}
	bad := report(os.Stdout, *label, s.skips, rules, where{root: os.Geteuid() == 0, race: *race})
	switch {
	case s.failed:
		os.Exit(1)
	case bad > 0 && *strict:
		fmt.Println("-- FAIL: a test CI needs was skipped")
		os.Exit(1)
	}
}
