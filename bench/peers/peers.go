// Package peers adapts the reliable-UDP libraries Raptor is measured against
// — kcp-go and quic-go — to the bench harness's Transport interface. It lives
// in the separate bench module so that the product never depends on them.
package peers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/raptormq/raptor/internal/benchkit"
	"github.com/xtaci/kcp-go/v5"
)

// Register adds kcp and quic to r.
func Register(r *benchkit.Registry) {
	r.Add(KCP{})
	r.Add(&QUIC{})
}

// KCP is kcp-go in its fast mode: NoDelay(1, 10, 2, 1), send and receive
// windows of 1024 packets, stream mode (small writes share segments, as for
// any byte stream; kcptun runs it so), no FEC, no encryption.
type KCP struct{}

// Name returns "kcp".
func (KCP) Name() string { return "kcp" }

func tuneKCP(s *kcp.UDPSession) {
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetStreamMode(true)
}

// Listen opens a kcp listener on addr.
func (KCP) Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := kcp.ListenWithOptions(addr, nil, 0, 0)
	if err != nil {
		return nil, err
	}
	return kcpListener{ln}, nil
}

type kcpListener struct{ *kcp.Listener }

func (l kcpListener) Accept() (net.Conn, error) {
	s, err := l.AcceptKCP()
	if err != nil {
		return nil, err
	}
	tuneKCP(s)
	return s, nil
}

// Dial opens a kcp session to addr.
func (KCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	s, err := kcp.DialWithOptions(addr, nil, 0, 0)
	if err != nil {
		return nil, err
	}
	tuneKCP(s)
	return s, nil
}

// QUIC is quic-go with one bidirectional stream per conn, TLS 1.3 with a
// self-signed certificate generated in this process.
type QUIC struct {
	once sync.Once
	srv  *tls.Config
	err  error
}

const alpn = "raptor-bench"

// Name returns "quic".
func (*QUIC) Name() string { return "quic" }

func (q *QUIC) tls() (*tls.Config, error) {
	q.once.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			q.err = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "raptor-bench"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			DNSNames:     []string{"localhost"},
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			q.err = err
			return
		}
		q.srv = &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			NextProtos:   []string{alpn},
		}
	})
	return q.srv, q.err
}

var quicConfig = &quic.Config{MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 10 * time.Second}

// Listen opens a quic listener on addr; Accept returns the first stream of
// each accepted connection.
func (q *QUIC) Listen(ctx context.Context, addr string) (net.Listener, error) {
	tc, err := q.tls()
	if err != nil {
		return nil, fmt.Errorf("quic: self-signed certificate: %w", err)
	}
	ln, err := quic.ListenAddr(addr, tc, quicConfig)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &quicListener{ln: ln, ctx: ctx, cancel: cancel}, nil
}

// Dial opens a quic connection to addr and one stream on it.
func (q *QUIC) Dial(ctx context.Context, addr string) (net.Conn, error) {
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}} // the benchmark's own self-signed peer
	c, err := quic.DialAddr(ctx, addr, tc, quicConfig)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		c.CloseWithError(0, "")
		return nil, err
	}
	return &quicStream{Stream: s, conn: c}, nil
}

type quicListener struct {
	ln     *quic.Listener
	ctx    context.Context
	cancel context.CancelFunc
}

func (l *quicListener) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept(l.ctx)
		if err != nil {
			if l.ctx.Err() != nil {
				return nil, net.ErrClosed
			}
			return nil, err
		}
		s, err := c.AcceptStream(l.ctx)
		if err != nil {
			c.CloseWithError(0, "")
			if l.ctx.Err() != nil {
				return nil, net.ErrClosed
			}
			continue // the peer left before opening its stream
		}
		return &quicStream{Stream: s, conn: c}, nil
	}
}

func (l *quicListener) Close() error {
	l.cancel()
	return l.ln.Close()
}

func (l *quicListener) Addr() net.Addr { return l.ln.Addr() }

// quicStream is one quic stream as a net.Conn; closing it closes its
// connection.
type quicStream struct {
	*quic.Stream
	conn *quic.Conn
	once sync.Once
}

func (s *quicStream) LocalAddr() net.Addr  { return s.conn.LocalAddr() }
func (s *quicStream) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

func (s *quicStream) Close() error {
	var err error
	s.once.Do(func() {
		err = s.Stream.Close()
		s.Stream.CancelRead(0)
		if cerr := s.conn.CloseWithError(0, ""); err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	})
	return err
}
