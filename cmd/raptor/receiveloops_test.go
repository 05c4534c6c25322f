package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/cli/clitest"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// TestGatewayReceiveLoops runs `raptor gateway --receive-loops 2
// --framing raw` in front of a TCP echo server: the gateway says its
// listener has two receive loops, and four Raptor clients (four sessions,
// each from its own socket) get their bytes echoed through it.
func TestGatewayReceiveLoops(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	echo := tcpEchoServer(t)
	gctx, stopGateway := context.WithCancel(ctx)
	var gout, gerr clitest.Buffer
	gready := make(chan string, 1)
	gdone := make(chan int, 1)
	go func() {
		gdone <- relayMain(gctx, ctx, gatewaySpec, []string{"--listen", "raptor://127.0.0.1:0", "--upstream", "tcp://" + echo.Addr().String(),
			"--framing", "raw", "--receive-loops", "2"}, &gout, &gerr, func(_ *plugin.Relay, addr string) { gready <- addr })
	}()
	var addr string
	select {
	case addr = <-gready:
	case code := <-gdone:
		t.Fatalf("gateway exited %d: %s", code, gerr.String())
	}
	if want := "raptor gateway: raptor://" + addr + " (2 receive loops) -> tcp://" + echo.Addr().String(); !strings.Contains(gout.String(), want) {
		t.Fatalf("gateway output lacks %q:\n%s", want, gout.String())
	}
	for i := 0; i < 4; i++ {
		s, err := reliable.Dial(ctx, addr, &reliable.Config{InsecureSkipServerAuth: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		st, err := s.OpenStream(ctx)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		st.SetDeadline(time.Now().Add(20 * time.Second))
		msg := fmt.Sprintf("session %d over a gateway with two receive loops", i)
		if _, err := st.Write([]byte(msg)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(st, got); err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q, %v; want %q", i, got, err, msg)
		}
		st.Close()
		s.CloseWithError(0, "done")
	}
	stopGateway()
	if code := <-gdone; code != 0 {
		t.Fatalf("gateway exit %d: %s", code, gerr.String())
	}
	if !strings.Contains(gout.String(), "4 accepted") {
		t.Errorf("gateway did not count 4 streams:\n%s", gout.String())
	}
}

// TestGatewayReceiveLoopsFlag: a --receive-loops out of 1..256 is a usage
// error that names the value; the proxy (which listens on TCP) has no such
// flag.
func TestGatewayReceiveLoopsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gateway", "--receive-loops", "0"}, "raptor gateway: --receive-loops 0: want 1 to 256"},
		{[]string{"gateway", "--receive-loops", "-1"}, "raptor gateway: --receive-loops -1: want 1 to 256"},
		{[]string{"gateway", "--receive-loops", "1000"}, "raptor gateway: --receive-loops 1000: want 1 to 256"},
		{[]string{"proxy", "--receive-loops", "2"}, "flag provided but not defined: -receive-loops"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
	if d := flagDefault(t, "gateway", "receive-loops"); d != "1" {
		t.Errorf("gateway --receive-loops default %q, want 1 (reliable.Config's)", d)
	}
}

// flagDefault returns the default of a non-string flag of command cmd,
// read from its -h output.
func flagDefault(t *testing.T, cmd, name string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run([]string{cmd, "-h"}, &out, &errb); code != 0 {
		t.Fatalf("%s -h: exit %d", cmd, code)
	}
	lines := strings.Split(errb.String(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "-"+name+" ") {
			for _, d := range lines[i:min(i+4, len(lines))] {
				if j := strings.Index(d, "(default "); j >= 0 {
					return strings.TrimSuffix(d[j+len("(default "):], ")")
				}
			}
		}
	}
	t.Fatalf("no default for -%s in:\n%s", name, errb.String())
	return ""
}
