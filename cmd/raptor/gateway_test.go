package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRelayCommandBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"gateway", "--listen", "udp://0.0.0.0:9092"},
		{"proxy", "--upstream", "quic://h:1"},
		{"gateway", "--upstream", "127.0.0.1:9092"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "accepted schemes: tcp://, raptor://, raptor+dpdk://") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"gateway", "--framing", "http"}, &out, &errb); code != 2 {
		t.Errorf("bad framing: exit %d", code)
	}
	if code := run([]string{"proxy", "-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "Accepts TCP connections") {
		t.Errorf("proxy -h: exit %d", code)
	}
}
