package reliable

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/wire"
)

// captureConn records every datagram a PacketConn sends and receives.
type captureConn struct {
	PacketConn
	mu   sync.Mutex
	out  [][]byte
	in   [][]byte
	mark int // index into out/in where the handshake ended
}

func (c *captureConn) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	n, err := c.PacketConn.ReadBatch(bufs, sizes, addrs)
	c.mu.Lock()
	for i := 0; i < n; i++ {
		c.in = append(c.in, bytes.Clone(bufs[i][:sizes[i]]))
	}
	c.mu.Unlock()
	return n, err
}

func (c *captureConn) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	c.mu.Lock()
	for _, b := range bufs {
		c.out = append(c.out, bytes.Clone(b))
	}
	c.mu.Unlock()
	return c.PacketConn.WriteBatch(bufs, addrs)
}

func (c *captureConn) snapshot() (out, in [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.out...), append([][]byte(nil), c.in...)
}

// capturedPair dials l over a captured loopback socket.
func capturedPair(t *testing.T, l *Listener, cfg *Config) (*Session, *captureConn) {
	t.Helper()
	pc, err := udpio.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cc := &captureConn{PacketConn: pc}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := DialPacket(ctx, cc, l.e.pc.LocalAddr(), pin(l, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.CloseWithError(0, "test done") })
	return s, cc
}

// echoServer accepts streams on l and echoes them; what it read goes to got.
func echoServer(l *Listener, got chan<- []byte) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if got != nil {
						got <- bytes.Clone(buf[:n])
					}
					c.Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// TestCaptureNoPlaintext: no datagram of a protected session, after the
// handshake, carries the bytes the application wrote, in either direction;
// every short-header datagram is sealed (it does not parse as plaintext
// frames), and the packet number is not in clear.
func TestCaptureNoPlaintext(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoServer(l, nil)
	s, cc := capturedPair(t, l, nil)
	if !s.Protected() {
		t.Fatal("session is not protected by default")
	}
	if cs := s.ConnectionState(); cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != alpnProtected {
		t.Fatalf("TLS version %#x, ALPN %q; want TLS 1.3 and %q", cs.Version, cs.NegotiatedProtocol, alpnProtected)
	}
	marker := []byte("RAPTOR-APPLICATION-MARKER-5a1f")
	msg := bytes.Repeat(marker, 300) // ~9 KiB: several packets
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	go st.Write(msg)
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(st, back); err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("echo: %v", err)
	}
	out, in := cc.snapshot()
	short, pnInClear := 0, 0
	var fp wire.FrameParser
	for _, d := range append(out, in...) {
		if bytes.Contains(d, marker[:12]) {
			t.Fatalf("datagram of %d bytes carries the application's marker", len(d))
		}
		if wire.IsLongHeader(d) {
			continue
		}
		short++
		// A plaintext packet would parse: header, then frames to the end.
		if h, hl, err := wire.ParseShortHeader(d); err == nil && h.PacketNumber < 64 {
			ok := true
			for b := d[hl:]; len(b) > 0 && ok; {
				_, n, err := fp.ParseNext(b)
				ok = err == nil
				b = b[n:]
			}
			if ok {
				pnInClear++
			}
		}
	}
	if short < 10 {
		t.Fatalf("only %d short-header datagrams captured", short)
	}
	if pnInClear > short/10 {
		t.Fatalf("%d of %d short-header datagrams parse as plaintext", pnInClear, short)
	}
	t.Logf("%d datagrams out, %d in, %d short; none carries the marker", len(out), len(in), short)
}

// forgeShort builds an unsealed short-header packet to dst with frames, as an
// attacker who knows the connection ID but not the keys would.
func forgeShort(t *testing.T, dst wire.ConnID, pn uint64, frames ...wire.Frame) []byte {
	t.Helper()
	h := wire.ShortHeader{DstID: dst, PacketNumber: pn}
	b := h.Append(nil)
	for _, f := range frames {
		var err error
		if b, err = f.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	for len(b) < 64 {
		b = append(b, 0)
	}
	return b
}

// TestForgedPacketsChangeNothing: modified, truncated, replayed and forged
// packets — CLOSE, RESET_STREAM, PING with a high packet number, STREAM data,
// NAK of everything — sent from the right addresses to both sides change
// nothing: they are dropped (counted as "auth", or as duplicates), the
// application never reads forged bytes and the session survives.
func TestForgedPacketsChangeNothing(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1024)
	go echoServer(l, got)
	s, cc := capturedPair(t, l, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(20 * time.Second))
	echo := func(msg []byte) {
		t.Helper()
		if _, err := st.Write(msg); err != nil {
			t.Fatalf("write: %v (session: %v)", err, s.Err())
		}
		back := make([]byte, len(msg))
		if _, err := io.ReadFull(st, back); err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("echo of %q: %q, %v (session: %v)", msg, back, err, s.Err())
		}
	}
	echo([]byte("before"))
	<-got
	s.mu.Lock()
	serverID := s.remoteID
	s.mu.Unlock()
	clientID := s.localID
	srvAddr, cliAddr := l.e.pc.LocalAddr(), s.ep.pc.LocalAddr()

	out, in := cc.snapshot()
	// A genuine protected packet each way, of at most the base datagram
	// size: not a datagram size probe (a PING padded to up to 16 KiB, sent
	// once the session carries data), whose modified copies a receiver still
	// reading into base-size buffers counts as truncated ("malformed"), not
	// as failing authentication.
	var toServer, toClient []byte
	genuine := func(p []byte) bool { return !wire.IsLongHeader(p) && len(p) <= DefaultMaxDatagramSize }
	for i := len(out) - 1; i >= 0 && toServer == nil; i-- {
		if genuine(out[i]) {
			toServer = out[i]
		}
	}
	for i := len(in) - 1; i >= 0 && toClient == nil; i-- {
		if genuine(in[i]) {
			toClient = in[i]
		}
	}
	if toServer == nil || toClient == nil {
		t.Fatal("no protected packet captured")
	}
	forged := func(dst wire.ConnID) [][]byte {
		evil := []byte("FORGED-BYTES")
		return [][]byte{
			forgeShort(t, dst, 1<<40, &wire.CloseFrame{ErrorCode: uint64(CodeNoError), Reason: []byte("forged close")}),
			forgeShort(t, dst, 1<<40+1, &wire.ResetStreamFrame{StreamID: st.id, ErrorCode: 9, FinalSize: 0}),
			forgeShort(t, dst, 1<<61, &wire.PingFrame{}),
			forgeShort(t, dst, 5, &wire.StreamFrame{StreamID: st.id, Offset: 6, Data: evil, HasLen: true}),
			forgeShort(t, dst, 6, &wire.StreamFrame{StreamID: st.id, Offset: 0, Data: evil, HasLen: true}),
			forgeShort(t, dst, 7, &wire.NakFrame{Ranges: []wire.AckRange{{Smallest: 0, Largest: wire.MaxPacketNumber}}}),
		}
	}
	mutate := func(p []byte) [][]byte {
		var v [][]byte
		for _, i := range []int{0, wire.ShortPNOffset, wire.ShortPNOffset + 1, len(p) / 2, len(p) - 1} {
			m := bytes.Clone(p)
			m[i] ^= 0x10
			v = append(v, m)
		}
		for _, n := range []int{wire.ShortPNOffset + 2, 33, len(p) - 1, len(p) - 16} {
			if n > 9 && n < len(p) {
				v = append(v, bytes.Clone(p[:n]))
			}
		}
		return v
	}
	toSrv := append(append(forged(serverID), mutate(toServer)...), toServer, toServer) // and two replays
	toCli := append(append(forged(clientID), mutate(toClient)...), toClient, toClient)
	before, beforeCli := l.Stats(), s.Stats()
	send := func(pc PacketConn, to netip.AddrPort, ds [][]byte) {
		for _, d := range ds {
			if _, err := pc.WriteBatch([][]byte{d}, []netip.AddrPort{to}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := 0; round < 5; round++ {
		send(s.ep.pc, srvAddr, toSrv) // from the client's socket: the right source address
		send(l.e.pc, cliAddr, toCli)  // from the listener's socket
	}
	wantSrv, wantCli := uint64(5*(len(toSrv)-2)), uint64(5*(len(toCli)-2))
	waitFor(t, 10*time.Second, func() bool {
		a, b := l.Stats(), s.Stats()
		return a.Counters[CounterDropsAuth]-before.Counters[CounterDropsAuth] >= wantSrv && b.Counters[CounterDropsAuth]-beforeCli.Counters[CounterDropsAuth] >= wantCli
	}, func() string {
		a, b := l.Stats(), s.Stats()
		return fmt.Sprintf("auth drops: server %d of %d, client %d of %d (malformed: server %d, client %d; genuine packets of %d and %d bytes)",
			a.Counters[CounterDropsAuth]-before.Counters[CounterDropsAuth], wantSrv,
			b.Counters[CounterDropsAuth]-beforeCli.Counters[CounterDropsAuth], wantCli,
			a.Counters[CounterDropsMalformed]-before.Counters[CounterDropsMalformed], b.Counters[CounterDropsMalformed]-beforeCli.Counters[CounterDropsMalformed],
			len(toServer), len(toClient))
	})
	if err := s.Err(); err != nil {
		t.Fatalf("session ended by forged packets: %v", err)
	}
	echo([]byte("after"))
	for {
		select {
		case b := <-got:
			if bytes.Contains(b, []byte("FORGED")) {
				t.Fatalf("server application read forged bytes %q", b)
			}
			if string(b) != "after" {
				t.Fatalf("server application read %q, want %q", b, "after")
			}
			a := l.Stats()
			t.Logf("server: %d auth drops, %d duplicates; client: %d auth drops", a.Counters[CounterDropsAuth]-before.Counters[CounterDropsAuth],
				a.Counters[CounterDuplicates]-before.Counters[CounterDuplicates], s.Stats().Counters[CounterDropsAuth]-beforeCli.Counters[CounterDropsAuth])
			return
		case <-time.After(10 * time.Second):
			t.Fatal("echo server got nothing")
		}
	}
}

// testCA is a certificate authority for tests, with leaf certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "raptor test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// leaf issues a certificate for name valid from notBefore to notAfter.
func (ca *testCA) leaf(t *testing.T, name string, notBefore, notAfter time.Time, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestTLSAuthentication: a verified server, mutual TLS, and each failure with
// an error that names it: unknown authority, wrong name, expired, missing
// client certificate, pin mismatch, and no way to authenticate at all.
func TestTLSAuthentication(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	now := time.Now()
	good := ca.leaf(t, "broker.test", now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageServerAuth)
	expired := ca.leaf(t, "broker.test", now.Add(-2*time.Hour), now.Add(-time.Hour), x509.ExtKeyUsageServerAuth)
	client := ca.leaf(t, "client.test", now.Add(-time.Hour), now.Add(time.Hour), x509.ExtKeyUsageClientAuth)
	for _, tt := range []struct {
		name    string
		server  *Config
		client  func(l *Listener) *Config
		wantErr string // substring; "" means the dial succeeds
	}{
		{"verified", &Config{TLS: &tls.Config{Certificates: []tls.Certificate{good}}},
			func(*Listener) *Config {
				return &Config{TLS: &tls.Config{RootCAs: ca.pool, ServerName: "broker.test"}}
			}, ""},
		{"mutual", &Config{TLS: &tls.Config{Certificates: []tls.Certificate{good}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}},
			func(*Listener) *Config {
				return &Config{TLS: &tls.Config{RootCAs: ca.pool, ServerName: "broker.test", Certificates: []tls.Certificate{client}}}
			}, ""},
		{"unknown authority", &Config{TLS: &tls.Config{Certificates: []tls.Certificate{good}}},
			func(*Listener) *Config {
				return &Config{TLS: &tls.Config{RootCAs: other.pool, ServerName: "broker.test"}}
			}, "certificate signed by unknown authority"},
		{"wrong name", &Config{TLS: &tls.Config{Certificates: []tls.Certificate{good}}},
			func(*Listener) *Config {
				return &Config{TLS: &tls.Config{RootCAs: ca.pool, ServerName: "evil.test"}}
			}, "certificate is valid for broker.test, not evil.test"},
		{"expired", &Config{TLS: &tls.Config{Certificates: []tls.Certificate{expired}}},
			func(*Listener) *Config {
				return &Config{TLS: &tls.Config{RootCAs: ca.pool, ServerName: "broker.test"}}
			}, "certificate has expired"},
		{"client certificate required", &Config{TLS: &tls.Config{Certificates: []tls.Certificate{good}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool}},
			func(*Listener) *Config {
				return &Config{TLS: &tls.Config{RootCAs: ca.pool, ServerName: "broker.test"}}
			}, "client didn't provide a certificate"},
		{"pin mismatch", nil,
			func(*Listener) *Config { return &Config{PinnedSHA256: bytes.Repeat([]byte{1}, 32)} },
			"does not match Config.PinnedSHA256"},
		{"pin", nil, func(l *Listener) *Config { return &Config{PinnedSHA256: l.CertificateSHA256()} }, ""},
		{"insecure skip server auth", nil, func(*Listener) *Config { return &Config{InsecureSkipServerAuth: true} }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Listen("127.0.0.1:0", tt.server)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go echoServer(l, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// DialPacket from a socket of its own, so that the same-process pin does not apply.
			pc, err := udpio.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg := tt.client(l)
			cfg.HandshakeTimeout = 3 * time.Second
			unregisterLocalListener(l.e.pc.LocalAddr())
			s, err := DialPacket(ctx, pc, l.e.pc.LocalAddr(), cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer s.CloseWithError(0, "")
				st, err := s.OpenStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				st.SetDeadline(time.Now().Add(5 * time.Second))
				st.Write([]byte("ping"))
				if _, err := io.ReadFull(st, make([]byte, 4)); err != nil {
					t.Fatalf("echo: %v", err)
				}
				return
			}
			if err == nil {
				s.CloseWithError(0, "")
				t.Fatalf("dial succeeded, want an error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("dial: %v\nwant an error containing %q", err, tt.wantErr)
			}
			t.Logf("dial: %v", err)
		})
	}
	// No tls.Config, no pin, no insecure option, no listener of ours there.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, "127.0.0.1:9", nil); !errors.Is(err, ErrNoServerAuth) {
		t.Fatalf("dial without a way to authenticate the server: %v, want ErrNoServerAuth", err)
	}
}

// TestInsecurePlaintext: with the option on both sides packets are not
// sealed; a plaintext client cannot reach a protected-only listener.
func TestInsecurePlaintext(t *testing.T) {
	l, err := Listen("127.0.0.1:0", &Config{InsecurePlaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoServer(l, nil)
	s, cc := capturedPair(t, l, &Config{InsecurePlaintext: true})
	if s.Protected() {
		t.Fatal("plaintext session reports protection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(5 * time.Second))
	marker := []byte("PLAINTEXT-MARKER")
	st.Write(marker)
	if _, err := io.ReadFull(st, make([]byte, len(marker))); err != nil {
		t.Fatal(err)
	}
	out, _ := cc.snapshot()
	seen := false
	for _, d := range out {
		seen = seen || bytes.Contains(d, marker)
	}
	if !seen {
		t.Fatal("plaintext mode: the marker is not in any datagram")
	}
	// A protected client still reaches this listener.
	p, _ := capturedPair(t, l, nil)
	if !p.Protected() {
		t.Fatal("protected client to a plaintext-capable listener is not protected")
	}
	// A plaintext client cannot reach a protected-only listener.
	l2, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	_, err = Dial(ctx, l2.Addr().String(), &Config{InsecurePlaintext: true, HandshakeTimeout: 3 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "application protocol") {
		t.Fatalf("plaintext client to a protected listener: %v, want an ALPN refusal", err)
	}
	t.Logf("refused: %v", err)
}

// TestKeyUpdate: with a tiny key-update interval both sides update their
// keys many times during a transfer (key phase bit, RFC 9001 §6) and every
// byte arrives.
func TestKeyUpdate(t *testing.T) {
	// 16 KiB datagrams (datagram size discovery on loopback) carry 2 MiB in
	// about 130 packets each way: an update every 8 packets.
	cfg := &Config{keyUpdateAfter: 8}
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoServer(l, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Dial(ctx, l.Addr().String(), pin(l, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseWithError(0, "")
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(20 * time.Second))
	msg := make([]byte, 2<<20)
	rand.Read(msg)
	go st.Write(msg)
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(st, back); err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("echo over key updates: %v", err)
	}
	s.mu.Lock()
	updates, failed := s.prot.keys.updates, s.prot.keys.failed
	s.mu.Unlock()
	if updates < 10 {
		t.Fatalf("%d key updates in a 2 MiB echo with an interval of 8 packets", updates)
	}
	t.Logf("client: %d key updates, %d packets failed to open", updates, failed)
}

// TestSimHandshakeLossy: the handshake (Retry, a ClientHello over two
// Initials, the server's flight, Finished, confirmation) completes over 20%
// loss, 20% duplication and reordering, for 50 seeds, and the session then
// carries data.
func TestSimHandshakeLossy(t *testing.T) {
	seeds := 50
	if raceEnabled {
		seeds = 10
	}
	link := simnet.LinkConfig{Loss: 0.20, Duplicate: 0.20, Reorder: 0.30, ReorderDelay: 2 * time.Millisecond,
		Delay: time.Millisecond, Jitter: 500 * time.Microsecond}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				_, l, s := simPair(t, seed, link, &Config{HandshakeTimeout: 30 * time.Second})
				took := time.Since(start)
				if !s.Protected() {
					t.Fatal("session not protected")
				}
				exchange(t, seed, l, s, 1, 4<<10)
				if testing.Verbose() {
					t.Logf("seed %d: handshake in %v of virtual time", seed, took)
				}
			})
		})
	}
}

// FuzzOpenShort feeds arbitrary datagrams to the protected receive path of an
// established session: nothing may panic, and nothing that does not open may
// change the session's receive state.
func FuzzOpenShort(f *testing.F) {
	secretA, secretB := bytes.Repeat([]byte{0xaa}, 32), bytes.Repeat([]byte{0xbb}, 32)
	sender, err := newAppKeys(tls.TLS_AES_128_GCM_SHA256, secretA, secretB, 4)
	if err != nil {
		f.Fatal(err)
	}
	for pn := uint64(0); pn < 6; pn++ {
		h := wire.ShortHeader{DstID: wire.ConnID{1}, PacketNumber: pn * 1000}
		b := make([]byte, 0, 200)
		b = h.Append(b)
		b = append(b, byte(wire.FramePing))
		f.Add(bytes.Clone(sender.sealShort(b, len(h.Append(nil)), h.PacketNumber)))
	}
	f.Add([]byte{0x40, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, d []byte) {
		for _, suite := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256} {
			k, err := newAppKeys(suite, secretB, secretA, 4)
			if err != nil {
				t.Fatal(err)
			}
			pkt := bytes.Clone(d)
			phase, cur := k.openPhase, k.curFirst
			_, hl, p, err := k.openShort(pkt)
			if err != nil {
				if k.openPhase != phase || k.curFirst != cur || k.failed != 1 {
					t.Fatalf("a packet that failed to open changed the keys: phase %v→%v", phase, k.openPhase)
				}
				continue
			}
			if hl < wire.ShortPNOffset+1 || hl+len(p)+aeadTagLen != len(d) {
				t.Fatalf("opened: header %d, payload %d of a %d-byte datagram", hl, len(p), len(d))
			}
		}
	})
}

// TestSessionLimitPerAddr: one source address cannot take all of a
// listener's slots (issue #9, "4096 sessions from one UDP socket"): beyond
// MaxSessionsPerAddr its dials are refused, and a client from another address
// still gets in; half-open handshakes from one address are bounded likewise.
func TestSessionLimitPerAddr(t *testing.T) {
	l, err := Listen("127.0.0.1:0", &Config{MaxSessions: 64, MaxSessionsPerAddr: 4, MaxHandshakesPerAddr: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dialFrom := func(local string) (*Session, error) {
		pc, err := udpio.Listen(local)
		if err != nil {
			t.Fatal(err)
		}
		return DialPacket(ctx, pc, l.e.pc.LocalAddr(), pin(l, nil))
	}
	for i := 0; i < 4; i++ {
		s, err := dialFrom("127.0.0.1:0")
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		defer s.CloseWithError(0, "")
	}
	_, err = dialFrom("127.0.0.1:0")
	var se *SessionError
	if !errors.As(err, &se) || se.Code != CodeRefused || !strings.Contains(se.Reason, "MaxSessionsPerAddr") {
		t.Fatalf("fifth session from 127.0.0.1: %v, want a refusal naming MaxSessionsPerAddr", err)
	}
	s, err := dialFrom("127.0.0.2:0")
	if err != nil {
		t.Fatalf("a client from 127.0.0.2: %v", err)
	}
	s.CloseWithError(0, "")
	// Half-open handshakes: Initials with valid cookies but no ClientHello.
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)}, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	refused := 0
	for i := 0; i < 4; i++ {
		src, dst := wire.ConnID{byte(i), 1}, wire.ConnID{byte(i), 2}
		c.Write(testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: src}, nil))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		rh, _, _ := wire.ParseLongHeader(buf[:n])
		tok, err := wire.ParseRetry(buf[:n], dst)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: rh.SrcID, SrcID: src}, tok))
		if i >= 2 {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("handshake %d from 127.0.0.3: no refusal: %v", i, err)
			}
			if h, _, err := wire.ParseLongHeader(buf[:n]); err == nil && h.Type == wire.TypeInitial && bytes.Contains(buf[:n], []byte("MaxHandshakesPerAddr")) {
				refused++
			}
		}
	}
	if refused != 2 {
		t.Fatalf("%d of 2 handshakes beyond MaxHandshakesPerAddr refused", refused)
	}
	if s, err := dialFrom("127.0.0.4:0"); err != nil {
		t.Fatalf("a client from 127.0.0.4 during the half-open flood: %v", err)
	} else {
		s.CloseWithError(0, "")
	}
}

// TestCookieReuse: a cookie opens one session (issue #9, "cookie reuse"): an
// Initial replaying it after that session is gone is refused.
func TestCookieReuse(t *testing.T) {
	l, err := Listen("127.0.0.1:0", &Config{HandshakeTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	src, dst := wire.ConnID{7}, wire.ConnID{8}
	c.Write(testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: src}, nil))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	rh, _, _ := wire.ParseLongHeader(buf[:n])
	tok, err := wire.ParseRetry(buf[:n], dst)
	if err != nil {
		t.Fatal(err)
	}
	withCookie := testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: rh.SrcID, SrcID: src}, tok)
	c.Write(withCookie)
	waitFor(t, 5*time.Second, func() bool { return l.SessionCount() == 1 }, func() string { return "no session from the cookie" })
	// The half-open session times out (HandshakeTimeout 200ms) and goes.
	waitFor(t, 5*time.Second, func() bool { return l.SessionCount() == 0 }, func() string { return "half-open session still there" })
	opened := l.Stats().Counters[CounterSessionsOpened]
	c.Write(withCookie)
	n, err = c.Read(buf)
	if err != nil {
		t.Fatalf("replayed cookie: no refusal: %v", err)
	}
	if !bytes.Contains(buf[:n], []byte("cookie already opened a session")) {
		t.Fatalf("replayed cookie answered with % x", buf[:n])
	}
	if got := l.Stats().Counters[CounterSessionsOpened]; got != opened {
		t.Fatalf("replayed cookie opened a session (%d → %d)", opened, got)
	}
}

// BenchmarkSealOpen1400 seals and opens one full-size short-header packet:
// the per-packet cost of protection on both sides.
func BenchmarkSealOpen1400(b *testing.B) {
	for _, suite := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256} {
		b.Run(tls.CipherSuiteName(suite), func(b *testing.B) {
			a, c := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
			tx, _ := newAppKeys(suite, a, c, 1<<40)
			rx, _ := newAppKeys(suite, c, a, 1<<40)
			buf := make([]byte, 0, 1452)
			payload := make([]byte, 1400)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h := wire.ShortHeader{DstID: wire.ConnID{1}, PacketNumber: uint64(i)}
				p := append(h.Append(buf[:0]), payload...)
				p = tx.sealShort(p, h.Len(), h.PacketNumber)
				if _, _, _, err := rx.openShort(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLocalPinRegistry: the same-process pin is taken only from one listener
// per address; two on one address (a simulated network) pin nothing.
func TestLocalPinRegistry(t *testing.T) {
	a := netip.MustParseAddrPort("192.0.2.9:7")
	fp1, fp2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	registerLocalListener(a, fp1)
	if got := localPin(a); !bytes.Equal(got, fp1) {
		t.Fatalf("pin %x, want %x", got, fp1)
	}
	registerLocalListener(a, fp2)
	if got := localPin(a); got != nil {
		t.Fatalf("two listeners on %v: pin %x, want none", a, got)
	}
	unregisterLocalListener(a)
	unregisterLocalListener(a)
	if got := localPin(a); got != nil {
		t.Fatalf("after both closed: pin %x", got)
	}
	any := netip.MustParseAddrPort("0.0.0.0:8")
	registerLocalListener(any, fp1)
	defer unregisterLocalListener(any)
	if got := localPin(netip.MustParseAddrPort("127.0.0.1:8")); !bytes.Equal(got, fp1) {
		t.Fatalf("loopback dial of a 0.0.0.0 listener: pin %x", got)
	}
	if got := localPin(netip.MustParseAddrPort("192.0.2.1:8")); got != nil {
		t.Fatalf("non-loopback dial of a 0.0.0.0 listener: pin %x, want none", got)
	}
}
