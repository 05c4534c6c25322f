package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// tlsFlags are the flags of Raptor's TLS 1.3 packet protection
// (docs/PROTOCOL.md §5.7), shared by broker, gateway and proxy.
type tlsFlags struct {
	cert, key, clientCA   string
	ca, serverName, pin   string
	skipVerify, plaintext bool
	listenSide, dialSide  bool
}

// addTLSFlags registers the flags for a command that listens on raptor://
// (server side) and/or dials raptor:// (client side).
func addTLSFlags(fs *flag.FlagSet, listen, dial bool) *tlsFlags {
	f := &tlsFlags{listenSide: listen, dialSide: dial}
	fs.StringVar(&f.cert, "tls-cert", "", "PEM certificate (chain) for raptor://: the server's when listening (default: an ephemeral self-signed one, whose SHA-256 is printed), the client's for mutual TLS when dialing")
	fs.StringVar(&f.key, "tls-key", "", "PEM private key of --tls-cert")
	if listen {
		fs.StringVar(&f.clientCA, "tls-client-ca", "", "PEM CA bundle: require raptor:// clients to present a certificate it signed (mutual TLS)")
	}
	if dial {
		fs.StringVar(&f.pin, "pin", "", "SHA-256 (hex) of the raptor:// server's certificate, as `raptor broker`/`gateway` print it")
		fs.StringVar(&f.ca, "tls-ca", "", "PEM CA bundle to verify the raptor:// server's certificate with (default: the system roots)")
		fs.StringVar(&f.serverName, "tls-server-name", "", "name the raptor:// server's certificate must carry (default: the host dialed)")
		fs.BoolVar(&f.skipVerify, "insecure-skip-verify", false, "INSECURE: accept any raptor:// server certificate (packets stay encrypted, but anyone on the path can impersonate the server)")
	}
	fs.BoolVar(&f.plaintext, "insecure-plaintext", false, "INSECURE: no encryption, no authentication of raptor:// packets (benchmarks on a trusted link only)")
	return f
}

// raptorConfig builds the reliable.Config the flags describe.
func (f *tlsFlags) raptorConfig() (*reliable.Config, error) {
	cfg := &reliable.Config{InsecurePlaintext: f.plaintext, InsecureSkipServerAuth: f.skipVerify}
	var tc *tls.Config
	if f.cert != "" || f.key != "" {
		cert, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert %q / --tls-key %q: %w", f.cert, f.key, err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	pool := func(flagName, path string) (*x509.CertPool, error) {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flagName, err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s %q: no PEM certificate in it", flagName, path)
		}
		return p, nil
	}
	if f.clientCA != "" {
		p, err := pool("--tls-client-ca", f.clientCA)
		if err != nil {
			return nil, err
		}
		if tc == nil {
			tc = &tls.Config{}
		}
		tc.ClientCAs, tc.ClientAuth = p, tls.RequireAndVerifyClientCert
	}
	if f.ca != "" || f.serverName != "" {
		if tc == nil {
			tc = &tls.Config{}
		}
		tc.ServerName = f.serverName
		if f.ca != "" {
			p, err := pool("--tls-ca", f.ca)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = p
		}
	}
	cfg.TLS = tc
	if f.pin != "" {
		pin, err := reliable.ParseFingerprint(f.pin)
		if err != nil {
			return nil, fmt.Errorf("--pin: %w", err)
		}
		cfg.PinnedSHA256 = pin
	}
	return cfg, nil
}

// shareCertificate gives cfg an ephemeral certificate when the flags name
// none, so that every raptor:// listener of the command (a broker's extra
// listeners, a Kafka-aware gateway's per-broker listeners) has the one
// certificate whose SHA-256 is printed: one --pin reaches them all.
func shareCertificate(cfg *reliable.Config) error {
	if cfg.TLS != nil && len(cfg.TLS.Certificates) > 0 {
		return nil
	}
	cert, err := reliable.NewEphemeralCertificate()
	if err != nil {
		return err
	}
	if cfg.TLS == nil {
		cfg.TLS = &tls.Config{}
	}
	cfg.TLS.Certificates = []tls.Certificate{cert}
	return nil
}

// printFingerprints prints the certificate SHA-256 of every Raptor listener
// among lns (looking inside plugin.MultiListeners), for clients' --pin.
func printFingerprints(w io.Writer, prog string, lns ...net.Listener) {
	for _, ln := range lns {
		switch l := ln.(type) {
		case *plugin.MultiListener:
			printFingerprints(w, prog, l.Listeners()...)
		case *reliable.Listener:
			if fp := l.CertificateSHA256(); fp != nil {
				fmt.Fprintf(w, "%s: raptor://%s certificate SHA-256 %s (clients: --pin %s)\n", prog, l.Addr(), reliable.FormatFingerprint(fp), reliable.FormatFingerprint(fp))
			}
		}
	}
}
