package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		code     int
		ok       bool
		wantOut  string // on the flag set's output
		wantFlag string
	}{
		{args: nil, ok: true},
		{args: []string{"--name", "x"}, ok: true, wantFlag: "x"},
		{args: []string{"-h"}, code: 0, wantOut: "-name"},
		{args: []string{"--bogus"}, code: 2, wantOut: "flag provided but not defined: -bogus"},
		{args: []string{"--name", "x", "stray"}, code: 2, wantOut: `cmd: unexpected argument "stray"`, wantFlag: "x"},
	} {
		var out bytes.Buffer
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		fs.SetOutput(&out)
		name := fs.String("name", "", "a name")
		code, ok := ParseFlags(fs, tc.args)
		if code != tc.code || ok != tc.ok {
			t.Errorf("%q: (%d, %v), want (%d, %v); output %q", tc.args, code, ok, tc.code, tc.ok, out.String())
		}
		if !strings.Contains(out.String(), tc.wantOut) || (tc.wantOut == "" && out.Len() != 0) {
			t.Errorf("%q: output %q, want it to hold %q", tc.args, out.String(), tc.wantOut)
		}
		if *name != tc.wantFlag {
			t.Errorf("%q: --name %q, want %q", tc.args, *name, tc.wantFlag)
		}
	}
}

func TestMultiFlag(t *testing.T) {
	var m MultiFlag
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&m, "upstream", "")
	if err := fs.Parse([]string{"--upstream", "a, b,", "--upstream", "c", "--upstream", " "}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(m, want) {
		t.Fatalf("values %q, want %q", m, want)
	}
	if s := m.String(); s != "a,b,c" {
		t.Fatalf("String() %q", s)
	}
}

func TestNewLogger(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		var out bytes.Buffer
		l := NewLogger(&out, verbose)
		l.Debug("quiet")
		l.Info("loud", "k", 1)
		got := out.String()
		if strings.Contains(got, "msg=quiet") != verbose || !strings.Contains(got, "level=INFO msg=loud k=1") {
			t.Errorf("verbose %v: logged %q", verbose, got)
		}
	}
}

// TestServeMetrics serves the metrics of a Raptor listener on loopback and
// reads them back labelled with the endpoint name.
func TestServeMetrics(t *testing.T) {
	ln, err := reliable.Listen("127.0.0.1:0", &reliable.Config{InsecurePlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	if ListenerStats(tcp) != nil {
		t.Error("ListenerStats of a TCP listener is not nil")
	}
	stats := ListenerStats(tcp, ln)
	if stats == nil {
		t.Fatal("ListenerStats of a Raptor listener is nil")
	}

	var stdout, stderr bytes.Buffer
	if stop, ok := ServeMetrics("cmd", "", "x", stats, nil, &stdout, &stderr); !ok || stdout.Len()+stderr.Len() != 0 {
		t.Fatalf("addr \"\": ok %v, stdout %q, stderr %q; want nothing served", ok, stdout.String(), stderr.String())
	} else {
		stop()
	}
	if _, ok := ServeMetrics("cmd", "127.0.0.1:bad", "x", stats, nil, &stdout, &stderr); ok || !strings.Contains(stderr.String(), "cmd: --metrics 127.0.0.1:bad:") {
		t.Fatalf("a bad address: ok %v, stderr %q", ok, stderr.String())
	}

	stdout.Reset()
	stop, ok := ServeMetrics("cmd", "127.0.0.1:0", "edge-1", stats, nil, &stdout, &stderr)
	if !ok {
		t.Fatalf("stderr %q", stderr.String())
	}
	url := regexp.MustCompile(`^cmd: metrics on (http://127\.0\.0\.1:\d+/metrics)\n$`).FindStringSubmatch(stdout.String())
	if url == nil {
		t.Fatalf("stdout %q does not say where", stdout.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url[1], nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`raptor_packets_received_total{endpoint="edge-1"} 0`, "go_goroutines ", "process_"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	stop()
	if _, err := http.DefaultClient.Do(req.Clone(ctx)); err == nil {
		t.Error("metrics still served after stop")
	}
	if _, ok := plugin.ListenerStats(ln); !ok {
		t.Error("plugin.ListenerStats disagrees")
	}
}
