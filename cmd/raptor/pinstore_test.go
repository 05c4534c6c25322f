package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raptormq/raptor/reliable"
)

// TestLocalPinStore: a listener's pin is written under its bound address,
// found for a loopback raptor:// upstream, ignored for anything else, and
// removed again; a listener in another process is what this stands for.
func TestLocalPinStore(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("RAPTOR_PIN_DIR", dir)
	l, err := reliable.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	remove, err := writeLocalPins(l)
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.UDPAddr).Port
	up := fmt.Sprintf("raptor://127.0.0.1:%d", port)
	pin, from, err := localPin([]string{up})
	if err != nil || !bytes.Equal(pin, l.CertificateSHA256()) {
		t.Fatalf("localPin(%s) = %x from %q, %v; want %x", up, pin, from, err, l.CertificateSHA256())
	}
	if fi, err := os.Stat(from); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pin file %s: %v, mode %v; want 0600", from, err, fi.Mode())
	}
	for _, other := range []string{
		fmt.Sprintf("raptor://127.0.0.1:%d", port+1), // nothing listens there
		fmt.Sprintf("raptor://localhost:%d", port),   // a name: the user says how to trust it
		fmt.Sprintf("raptor://192.0.2.1:%d", port),   // not loopback
	} {
		if pin, _, err := localPin([]string{other}); pin != nil || err != nil {
			t.Fatalf("localPin(%s) = %x, %v; want nothing", other, pin, err)
		}
	}
	// Two upstreams with different certificates: one pin cannot serve both.
	l2, err := reliable.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	remove2, err := writeLocalPins(l2)
	if err != nil {
		t.Fatal(err)
	}
	defer remove2()
	if pin, _, _ := localPin([]string{up, "raptor://" + l2.Addr().String()}); pin != nil {
		t.Fatalf("two certificates pinned as one: %x", pin)
	}
	// The flags win: with --pin given, nothing is read.
	cfg := &reliable.Config{}
	var out bytes.Buffer
	useLocalPin(&out, "raptor proxy", &tlsFlags{pin: "ab"}, cfg, []string{up})
	if cfg.PinnedSHA256 != nil || out.Len() != 0 {
		t.Fatalf("local pin used although --pin was given: %x %q", cfg.PinnedSHA256, out.String())
	}
	useLocalPin(&out, "raptor proxy", &tlsFlags{}, cfg, []string{up})
	if !bytes.Equal(cfg.PinnedSHA256, l.CertificateSHA256()) || !strings.Contains(out.String(), "pinned the local raptor:// upstream") {
		t.Fatalf("useLocalPin: %x, %q", cfg.PinnedSHA256, out.String())
	}
	remove()
	if _, err := os.Stat(filepath.Join(dir, strings.ReplaceAll(l.Addr().String(), ":", "_"))); !os.IsNotExist(err) {
		t.Fatalf("pin file still there after remove: %v", err)
	}
}

// TestLocalPinDialsAcrossConfigs: a dialer configured only from the local pin
// store (as `raptor proxy` with no flags is) completes the protected
// handshake with the listener that wrote it, and a wrong pin fails.
func TestLocalPinDialsAcrossConfigs(t *testing.T) {
	t.Setenv("RAPTOR_PIN_DIR", t.TempDir())
	l, err := reliable.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	remove, err := writeLocalPins(l)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	cfg := &reliable.Config{}
	useLocalPin(&bytes.Buffer{}, "raptor proxy", &tlsFlags{}, cfg, []string{"raptor://" + l.Addr().String()})
	if cfg.PinnedSHA256 == nil {
		t.Fatal("no pin found")
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			b := make([]byte, 4)
			if n, err := c.Read(b); err == nil {
				c.Write(b[:n])
			}
		}
	}()
	d := reliable.Dialer{Config: cfg}
	defer d.Close()
	c, err := d.DialContext(t.Context(), "udp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial with the local pin: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := c.Read(b); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q, %v", b, err)
	}
	// The pin is what authenticates: a different one fails the handshake.
	wrong := bytes.Clone(cfg.PinnedSHA256)
	wrong[0] ^= 1
	bad := reliable.Dialer{Config: &reliable.Config{PinnedSHA256: wrong}}
	defer bad.Close()
	if c, err := bad.DialContext(t.Context(), "udp", l.Addr().String()); err == nil {
		c.Close()
		t.Fatal("a wrong pin was accepted")
	}
}
