package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/raptormq/raptor/internal/cli/clitest"
)

// lineWriter hands the first line written to it to a channel.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan string
	sent  bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if line, _, ok := strings.Cut(w.buf.String(), "\n"); ok {
			w.sent = true
			w.first <- line
		}
	}
	return len(p), nil
}

// startServe runs schemaServe until the test ends and returns its URL.
func startServe(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	serveCtx, stop := context.WithCancel(ctx)
	out := &lineWriter{first: make(chan string, 1)}
	var errOut clitest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- schemaServe(serveCtx, append([]string{"--listen", "127.0.0.1:0"}, args...), out, &errOut)
	}()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != 0 {
			t.Errorf("serve %v exit %d: %s", args, code, errOut.String())
		}
	})
	select {
	case line := <-out.first:
		return regexp.MustCompile(`http://\S+`).FindString(line)
	case code := <-done:
		done <- code
		t.Fatalf("serve %v exited %d: %s", args, code, errOut.String())
	case <-ctx.Done():
		t.Fatalf("serve %v did not start", args)
	}
	return ""
}

// TestSchemaServeKafka runs a primary and a secondary on the Kafka store of
// an embedded kfake broker: a schema registered through the secondary is
// served by the primary.
func TestSchemaServeKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	primary := startServe(t, ctx, "--brokers", brokers)
	secondary := startServe(t, ctx, "--brokers", brokers, "--primary-url", primary)
	schemaFile := filepath.Join(t.TempDir(), "s.avsc")
	os.WriteFile(schemaFile, []byte(`{"type":"record","name":"K","fields":[{"name":"k","type":"string"}]}`), 0o644)
	var o, e bytes.Buffer
	if code := runSchema([]string{"register", "--url", secondary, "--subject", "k", "--schema", schemaFile}, &o, &e); code != 0 {
		t.Fatalf("register via secondary: %d %s", code, e.String())
	}
	o.Reset()
	if code := runSchema([]string{"get", "--url", primary, "--subject", "k"}, &o, &e); code != 0 || !strings.Contains(o.String(), "version 1 id 1") {
		t.Fatalf("get via primary: %d %q %s", code, o.String(), e.String())
	}
	if code := schemaServe(ctx, []string{"--data", t.TempDir(), "--primary-url", primary}, &o, &e); code != 2 {
		t.Fatalf("--primary-url with a file store: exit %d", code)
	}
}

func TestSchemaCLI(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.avsc")
	v2 := filepath.Join(dir, "v2.avsc")
	bad := filepath.Join(dir, "bad.avsc")
	os.WriteFile(v1, []byte(`{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}`), 0o644)
	os.WriteFile(v2, []byte(`{"type":"record","name":"T","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":1}]}`), 0o644)
	os.WriteFile(bad, []byte(`{"type":"record","name":"T","fields":[{"name":"a","type":"string"}]}`), 0o644)
	proto := filepath.Join(dir, "o.proto")
	os.WriteFile(proto, []byte("syntax = \"proto3\";\nmessage O { int64 id = 1; }\n"), 0o644)
	js := filepath.Join(dir, "o.json")
	os.WriteFile(js, []byte(`{"type":"object","properties":{"id":{"type":"integer"}}}`), 0o644)
	jsBad := filepath.Join(dir, "bad.json")
	os.WriteFile(jsBad, []byte(`{"type":"object","properties":{"id":{"type":"string"}}}`), 0o644)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	serveCtx, stop := context.WithCancel(ctx)
	out := &lineWriter{first: make(chan string, 1)}
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- schemaServe(serveCtx, []string{"--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data")}, out, &errOut)
	}()
	var url string
	select {
	case line := <-out.first:
		url = regexp.MustCompile(`http://\S+`).FindString(line)
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, errOut.String())
	case <-ctx.Done():
		t.Fatal("serve did not start")
	}

	tests := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"register", "--url", url, "--subject", "s", "--schema", v1}, 0, "subject s version 1 id 1"},
		{[]string{"check", "--url", url, "--subject", "s", "--schema", v2}, 0, "compatible with subject s"},
		{[]string{"check", "--url", url, "--subject", "s", "--schema", bad}, 1, "incompatible"},
		{[]string{"register", "--url", url, "--subject", "s", "--schema", v2}, 0, "version 2 id 2"},
		{[]string{"register", "--url", url, "--subject", "s", "--schema", bad}, 1, ""},
		{[]string{"get", "--url", url, "--subject", "s"}, 0, "version 2 id 2"},
		{[]string{"get", "--url", url, "--id", "1"}, 0, `"name":"a"`},
		{[]string{"get", "--url", url, "--id", "9"}, 1, ""},
		{[]string{"get", "--url", url}, 2, ""},
		{[]string{"register", "--url", url, "--subject", "p", "--type", "protobuf", "--schema", proto}, 0, "subject p version 1 id 3"},
		{[]string{"register", "--url", url, "--subject", "j", "--type", "JSON", "--schema", js}, 0, "subject j version 1 id 4"},
		{[]string{"check", "--url", url, "--subject", "j", "--type", "JSON", "--schema", jsBad}, 1, "incompatible"},
		{[]string{"register", "--url", url, "--subject", "j", "--type", "XML", "--schema", js}, 2, ""},
		{[]string{"mode", "--url", url}, 0, "READWRITE"},
		{[]string{"mode", "--url", url, "--subject", "s", "--set", "readonly"}, 0, "READONLY"},
		{[]string{"register", "--url", url, "--subject", "s", "--schema", v1}, 1, ""},
		{[]string{"mode", "--url", url, "--set", "IMPORT"}, 1, ""},
		{[]string{"mode", "--url", url, "--set", "IMPORT", "--force"}, 0, "IMPORT"},
		{[]string{"mode", "--url", url, "--set", "BOGUS"}, 2, ""},
		{[]string{"bogus"}, 2, ""},
		{[]string{}, 2, "Usage"},
	}
	for _, tc := range tests {
		var o, e bytes.Buffer
		code := runSchema(tc.args, &o, &e)
		if code != tc.code || !strings.Contains(o.String(), tc.out) {
			t.Fatalf("%v: exit %d (want %d), stdout %q (want %q), stderr %q", tc.args, code, tc.code, o.String(), tc.out, e.String())
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d: %s", code, errOut.String())
	}
	// Flag errors.
	var o, e bytes.Buffer
	if code := schemaServe(ctx, []string{"--listen", "127.0.0.1:0"}, &o, &e); code != 2 {
		t.Fatalf("serve without a store: exit %d", code)
	}
}
