package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// The local pin store lets `raptor broker` (or `raptor gateway`) and a
// `raptor proxy` on the same machine run together with no flags while every
// packet stays protected: a command that listens on raptor:// writes the
// SHA-256 of its certificate to a file readable only by its user, one per
// bound address, and a command that dials a loopback raptor:// address
// without --pin, --tls-ca or an insecure option pins the certificate it finds
// there. Trust is that of the user's own files, as with ssh's known_hosts;
// anything beyond loopback needs --pin or --tls-ca (README, "Packet
// protection").

// pinDir is where pins are kept: $RAPTOR_PIN_DIR, else the user's cache
// directory's raptor/pins.
func pinDir() (string, error) {
	if d := os.Getenv("RAPTOR_PIN_DIR"); d != "" {
		return d, nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("local pin store: %w (set RAPTOR_PIN_DIR)", err)
	}
	return filepath.Join(c, "raptor", "pins"), nil
}

// pinFile names the pin of one bound UDP address.
func pinFile(dir string, ap netip.AddrPort) string {
	return filepath.Join(dir, strings.NewReplacer(":", "_", "[", "", "]", "").Replace(ap.String()))
}

// writeLocalPins records the certificate SHA-256 of every Raptor listener
// among lns and returns a function that removes what it wrote (a stale pin
// left by a crash only makes a later dial fail with a pin mismatch).
func writeLocalPins(lns ...net.Listener) (remove func(), err error) {
	dir, err := pinDir()
	if err != nil {
		return func() {}, err
	}
	var written []string
	remove = func() {
		for _, f := range written {
			os.Remove(f)
		}
	}
	var walk func(lns []net.Listener) error
	walk = func(lns []net.Listener) error {
		for _, ln := range lns {
			switch l := ln.(type) {
			case *plugin.MultiListener:
				if err := walk(l.Listeners()); err != nil {
					return err
				}
			case *reliable.Listener:
				fp := l.CertificateSHA256()
				ua, ok := l.Addr().(*net.UDPAddr)
				if fp == nil || !ok {
					continue
				}
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return fmt.Errorf("local pin store: %w", err)
				}
				f := pinFile(dir, ua.AddrPort())
				if err := os.WriteFile(f, []byte(reliable.FormatFingerprint(fp)+"\n"), 0o600); err != nil {
					return fmt.Errorf("local pin store: %w", err)
				}
				written = append(written, f)
			}
		}
		return nil
	}
	if err := walk(lns); err != nil {
		remove()
		return func() {}, err
	}
	return remove, nil
}

// localPin finds the pin for upstreams (raptor:// URLs) when all of them are
// loopback addresses whose listeners wrote the same certificate; it returns
// nil (and no error) when there is nothing to use.
func localPin(upstreams []string) (pin []byte, from string, err error) {
	dir, err := pinDir()
	if err != nil {
		return nil, "", err
	}
	for _, u := range upstreams {
		ep, perr := plugin.ParseEndpoint(u)
		if perr != nil || !strings.HasPrefix(ep.Scheme, "raptor") {
			continue
		}
		ap, perr := netip.ParseAddrPort(ep.Addr)
		if perr != nil || !ap.Addr().Unmap().IsLoopback() {
			return nil, "", nil // a name or a remote host: the user must say how to trust it
		}
		var p []byte
		var f string
		for _, cand := range []netip.AddrPort{ap, netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port()), netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port())} {
			b, rerr := os.ReadFile(pinFile(dir, cand))
			if errors.Is(rerr, fs.ErrNotExist) {
				continue
			}
			if rerr != nil {
				return nil, "", fmt.Errorf("local pin store: %w", rerr)
			}
			if p, err = reliable.ParseFingerprint(strings.TrimSpace(string(b))); err != nil {
				return nil, "", fmt.Errorf("local pin store: %s: %w", pinFile(dir, cand), err)
			}
			f = pinFile(dir, cand)
			break
		}
		if p == nil {
			return nil, "", nil
		}
		if pin != nil && !bytes.Equal(pin, p) {
			return nil, "", nil // several certificates: one --pin cannot name them all
		}
		pin, from = p, f
	}
	return pin, from, nil
}

// useLocalPin pins cfg to the local listener's certificate when the flags
// give no other way to authenticate the raptor:// upstreams, and says so.
func useLocalPin(w io.Writer, prog string, f *tlsFlags, cfg *reliable.Config, upstreams []string) {
	if f.pin != "" || f.ca != "" || f.serverName != "" || f.skipVerify || f.plaintext || cfg.PinnedSHA256 != nil {
		return
	}
	pin, from, err := localPin(upstreams)
	if err != nil {
		fmt.Fprintf(w, "%s: %v\n", prog, err)
		return
	}
	if pin != nil {
		cfg.PinnedSHA256 = pin
		fmt.Fprintf(w, "%s: pinned the local raptor:// upstream's certificate SHA-256 %s (from %s)\n", prog, reliable.FormatFingerprint(pin), from)
	}
}
