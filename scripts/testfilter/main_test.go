package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `{"Action":"start","Package":"example.com/a"}
{"Action":"run","Package":"example.com/a","Test":"TestOK"}
{"Action":"output","Package":"example.com/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"example.com/a","Test":"TestOK","Output":"    a_test.go:3: chatter\n"}
{"Action":"pass","Package":"example.com/a","Test":"TestOK"}
{"Action":"output","Package":"example.com/a","Test":"TestRoot","Output":"=== RUN   TestRoot\n"}
{"Action":"output","Package":"example.com/a","Test":"TestRoot","Output":"    a_test.go:9: needs root\n"}
{"Action":"output","Package":"example.com/a","Test":"TestRoot","Output":"--- SKIP: TestRoot (0.00s)\n"}
{"Action":"skip","Package":"example.com/a","Test":"TestRoot"}
{"Action":"output","Package":"example.com/a","Test":"TestBad/sub","Output":"    a_test.go:20: got 1, want 2\n"}
{"Action":"output","Package":"example.com/a","Test":"TestBad/sub","Output":"--- FAIL: TestBad/sub (0.00s)\n"}
{"Action":"fail","Package":"example.com/a","Test":"TestBad/sub"}
{"Action":"output","Package":"example.com/a","Test":"BenchmarkX","Output":"=== RUN   BenchmarkX\n"}
{"Action":"output","Package":"example.com/a","Test":"BenchmarkX","Output":"BenchmarkX-2   \t"}
{"Action":"output","Package":"example.com/a","Test":"BenchmarkX","Output":"       1\t       500.0 ns/op\n"}
{"Action":"pass","Package":"example.com/a","Test":"BenchmarkX"}
{"Action":"output","Package":"example.com/a","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/a","Output":"FAIL\texample.com/a\t0.01s\n"}
{"Action":"fail","Package":"example.com/a"}
{"Action":"output","Package":"example.com/b","Output":"ok  \texample.com/b\t0.01s\n"}
{"Action":"pass","Package":"example.com/b"}
not json: a vet message
`

func TestFilterShowsWhatPlainGoTestShows(t *testing.T) {
	var out bytes.Buffer
	s, err := filter(strings.NewReader(sample), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"got 1, want 2", "--- FAIL: TestBad/sub", "FAIL\texample.com/a\t0.01s", "ok  \texample.com/b", "BenchmarkX-2   \t       1\t       500.0 ns/op", "not json: a vet message"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, notWant := range []string{"chatter", "=== RUN"} {
		if strings.Contains(got, notWant) {
			t.Errorf("output has %q of a passing test:\n%s", notWant, got)
		}
	}
	if !s.failed || len(s.skips) != 1 || s.skips[0].Name != "example.com/a.TestRoot" || s.skips[0].Reason != "a_test.go:9: needs root" {
		t.Fatalf("summary %+v", s)
	}
}

func TestAllowList(t *testing.T) {
	rules, err := parseAllow(strings.NewReader("# comment\n\n.*/a\\.TestRoot nonroot needs root\n.*\\.TestAny always kernel feature\n.*\\.TestAlloc race the race detector allocates\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		at   where
		ok   bool
	}{
		{"example.com/a.TestRoot", where{}, true},
		{"example.com/a.TestRoot", where{root: true}, false}, // as root the test must run
		{"example.com/a.TestAny", where{root: true}, true},
		{"example.com/a.TestAnyOther", where{}, false}, // anchored
		{"example.com/a.TestOther", where{}, false},
		{"example.com/a.TestAlloc", where{race: true}, true},
		{"example.com/a.TestAlloc", where{}, false}, // the plain pass must run it
	} {
		if got := excused(skip{Name: tc.name}, rules, tc.at) != nil; got != tc.ok {
			t.Errorf("%s %+v: excused %v, want %v", tc.name, tc.at, got, tc.ok)
		}
	}
	var out bytes.Buffer
	if bad := report(&out, "pass", []skip{{"example.com/a.TestRoot", "needs root"}}, rules, where{root: true}); bad != 1 || !strings.Contains(out.String(), "!! SKIP example.com/a.TestRoot: needs root") {
		t.Fatalf("report: %d bad\n%s", bad, out.String())
	}
	for _, bad := range []string{"x always", "x sometimes why", "( always why"} {
		if _, err := parseAllow(strings.NewReader(bad), "x"); err == nil {
			t.Errorf("allow line %q accepted", bad)
		}
	}
}

// A package killed while a test ran (a -timeout panic, a signal) fails with
// no fail event for the test: its output so far, the dump included, is
// printed under the package's failure.
func TestFilterShowsUnfinishedTests(t *testing.T) {
	in := `{"Action":"run","Package":"example.com/h","Test":"TestHang"}
{"Action":"output","Package":"example.com/h","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"example.com/h","Test":"TestHang","Output":"goroutine 7 [chan receive]:\n"}
{"Action":"run","Package":"example.com/h","Test":"TestDone"}
{"Action":"pass","Package":"example.com/h","Test":"TestDone"}
{"Action":"output","Package":"example.com/h","Output":"FAIL\texample.com/h\t600.0s\n"}
{"Action":"fail","Package":"example.com/h"}
`
	var out bytes.Buffer
	s, err := filter(strings.NewReader(in), &out)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"--- UNFINISHED: example.com/h.TestHang", "goroutine 7 [chan receive]:"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestDone") || !s.failed {
		t.Errorf("failed %v, output:\n%s", s.failed, got)
	}
}
