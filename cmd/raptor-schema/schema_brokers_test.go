package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestParseBrokerURLs(t *testing.T) {
	for _, tc := range []struct {
		in     string
		addrs  string
		raptor bool
		err    string
	}{
		{in: "127.0.0.1:9092", addrs: "127.0.0.1:9092"},
		{in: "tcp://a:1,tcp://b:2", addrs: "a:1,b:2"},
		{in: "raptor://127.0.0.1:19092, raptor://127.0.0.1:19093", addrs: "127.0.0.1:19092,127.0.0.1:19093", raptor: true},
		{in: "raptor://a:1,tcp://b:2", err: "mixes raptor:// with tcp://"},
		{in: "http://a:1", err: `scheme "http"`},
		{in: "raptor://nohost", err: "want host:port"},
	} {
		addrs, raptor, err := parseBrokerURLs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(addrs, ",") != tc.addrs || raptor != tc.raptor {
			t.Errorf("%q = %v, %v, %v; want %s, %v", tc.in, addrs, raptor, err, tc.addrs, tc.raptor)
		}
	}
}

// TestSchemaServeBadBrokersPlainError: a wrong --brokers is a usage error that
// names the entry, and an unreachable cluster a plain start-up error, never a
// REST error code.
func TestSchemaServeBadBrokersPlainError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := schemaServe(context.Background(), []string{"--brokers", "raptor://127.0.0.1:1,tcp://127.0.0.1:2"}, &out, &errb); code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, errb.String())
	}
	if !strings.Contains(errb.String(), "mixes raptor:// with tcp://") {
		t.Fatalf("stderr %q does not say what is wrong", errb.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errb.Reset()
	// Nothing listens on port 1 of loopback: the store cannot start.
	code := schemaServe(ctx, []string{"--listen", "127.0.0.1:0", "--brokers", "tcp://127.0.0.1:1"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "open the Kafka store") || strings.Contains(s, "error code") {
		t.Fatalf("stderr %q: want a plain start-up error without a REST code", s)
	}
}
