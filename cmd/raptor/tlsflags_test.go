package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestTLSFlags(t *testing.T) {
	pin := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		args    []string
		wantErr string
		check   func(t *testing.T, f *tlsFlags)
	}{
		{args: []string{"--pin", pin}, check: func(t *testing.T, f *tlsFlags) {
			cfg, _ := f.raptorConfig()
			if !bytes.Equal(cfg.PinnedSHA256, bytes.Repeat([]byte{0xab}, 32)) || cfg.TLS != nil {
				t.Fatalf("pin %x, TLS %v", cfg.PinnedSHA256, cfg.TLS)
			}
		}},
		{args: []string{"--pin", "abc"}, wantErr: "--pin"},
		{args: []string{"--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, wantErr: "--tls-cert"},
		{args: []string{"--tls-client-ca", "/nonexistent.pem"}, wantErr: "--tls-client-ca"},
		{args: []string{"--tls-ca", "/nonexistent.pem"}, wantErr: "--tls-ca"},
		{args: []string{"--insecure-plaintext", "--insecure-skip-verify", "--tls-server-name", "b.test"}, check: func(t *testing.T, f *tlsFlags) {
			cfg, _ := f.raptorConfig()
			if !cfg.InsecurePlaintext || !cfg.InsecureSkipServerAuth || cfg.TLS == nil || cfg.TLS.ServerName != "b.test" {
				t.Fatalf("config %+v", cfg)
			}
		}},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f := addTLSFlags(fs, true, true)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		_, err := f.raptorConfig()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want one naming %s", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		tt.check(t, f)
	}
}
