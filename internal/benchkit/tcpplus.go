package benchkit

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// TCPBuffered is TCP (TCP_NODELAY) with a 64 KiB write buffer and a 64 KiB
// read buffer (bufio) on both ends: the best a TCP application can do for a
// stream of small messages. A conn's write buffer goes to the socket when it
// is full, before the conn would wait in a read (a reader waiting for an
// answer sends what it has first), on Close, and at the latest
// [BufferedFlushDelay] after the first byte that waits.
type TCPBuffered struct{}

// BufferedWriteSize is the write (and read) buffer of a [TCPBuffered] conn.
const BufferedWriteSize = 64 << 10

// BufferedFlushDelay bounds how long a written byte waits in a
// [TCPBuffered] conn's buffer when the application neither fills it nor
// reads.
const BufferedFlushDelay = 500 * time.Microsecond

// bufferedListener wraps a listener (or passes its error on) so that its
// conns have a write buffer (newBufferedConn).
func bufferedListener(ln net.Listener, err error) (net.Listener, error) {
	if err != nil {
		return nil, err
	}
	return wrapListener{ln, newBufferedConn}, nil
}

// bufferedDialed gives a dialed conn (or passes its error on) a write buffer.
func bufferedDialed(c net.Conn, err error) (net.Conn, error) {
	if err != nil {
		return nil, err
	}
	return newBufferedConn(c), nil
}

// Name returns "tcp-buffered".
func (TCPBuffered) Name() string { return "tcp-buffered" }

// Listen opens a TCP listener whose conns have TCP_NODELAY set and a write
// buffer.
func (TCPBuffered) Listen(ctx context.Context, addr string) (net.Listener, error) {
	return bufferedListener(TCP{}.Listen(ctx, addr))
}

// Dial opens a TCP conn with TCP_NODELAY set and a write buffer.
func (TCPBuffered) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return bufferedDialed(TCP{}.Dial(ctx, addr))
}

type wrapListener struct {
	net.Listener
	wrap func(net.Conn) net.Conn
}

func (l wrapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.wrap(c), nil
}

// bufferedConn is a net.Conn whose writes go through a bufio.Writer and
// whose reads through a bufio.Reader.
type bufferedConn struct {
	net.Conn
	r     *bufio.Reader // Read's only
	delay time.Duration // BufferedFlushDelay
	mu    sync.Mutex
	w     *bufio.Writer
	timer *time.Timer
	armed bool
	err   error // first write error: the conn is broken
}

func newBufferedConn(c net.Conn) net.Conn { return newBufferedConnDelay(c, BufferedFlushDelay) }

// newBufferedConnDelay is newBufferedConn with another flush delay (tests).
func newBufferedConnDelay(c net.Conn, delay time.Duration) *bufferedConn {
	b := &bufferedConn{Conn: c, delay: delay, r: bufio.NewReaderSize(c, BufferedWriteSize), w: bufio.NewWriterSize(c, BufferedWriteSize)}
	b.timer = time.AfterFunc(time.Hour, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.flushLocked()
	})
	b.timer.Stop()
	return b
}

func (b *bufferedConn) flushLocked() error {
	b.armed = false
	if b.err == nil && b.w.Buffered() > 0 {
		b.err = b.w.Flush()
	}
	return b.err
}

// Write buffers p; the buffer goes out when full (inside this call), or by
// one of the other rules of [TCPBuffered].
func (b *bufferedConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.w.Write(p)
	if err != nil {
		b.err = err
		return n, err
	}
	if b.w.Buffered() > 0 && !b.armed {
		b.armed = true
		b.timer.Reset(b.delay)
	}
	return n, nil
}

// Read returns buffered bytes, or sends what waits to be written and then
// reads. When another goroutine is writing at that moment, its buffered
// bytes go out by the flush timer: a Read never waits behind a Write that
// the peer's reading would unblock.
func (b *bufferedConn) Read(p []byte) (int, error) {
	if b.r.Buffered() == 0 && b.mu.TryLock() {
		err := b.flushLocked()
		b.mu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	return b.r.Read(p)
}

// Close sends what is buffered and closes the conn.
func (b *bufferedConn) Close() error {
	b.mu.Lock()
	b.timer.Stop()
	b.flushLocked()
	b.mu.Unlock()
	return b.Conn.Close()
}

// TCPTLS is TLS 1.3 (crypto/tls) over TCP (TCP_NODELAY), one TLS record per
// Write, with an ECDSA P-256 certificate made when the process first needs
// it: what a protected Raptor session is measured against.
//
// The client does not verify the server's certificate: the bench measures
// the cost of protected data after the handshake (outside every measured
// interval), and in the split mode (bench serve) client and server are two
// processes with certificates of their own.
type TCPTLS struct{}

// Name returns "tcp+tls".
func (TCPTLS) Name() string { return "tcp+tls" }

var (
	benchCertOnce sync.Once
	benchCert     tls.Certificate
	benchCertErr  error
)

func ephemeralCert() (tls.Certificate, error) {
	benchCertOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			benchCertErr = err
			return
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "raptor-bench"},
			DNSNames:     []string{"localhost"},
			IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			benchCertErr = err
			return
		}
		benchCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return benchCert, benchCertErr
}

// Listen opens a TCP listener whose conns are TLS 1.3 servers.
func (TCPTLS) Listen(ctx context.Context, addr string) (net.Listener, error) {
	cert, err := ephemeralCert()
	if err != nil {
		return nil, fmt.Errorf("bench: tcp+tls certificate: %w", err)
	}
	ln, err := TCP{}.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	return tls.NewListener(ln, cfg), nil
}

// Dial opens a TLS 1.3 client conn over TCP and completes the handshake.
func (TCPTLS) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := TCP{}.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, ServerName: "raptor-bench"})
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("bench: tcp+tls handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// TCPTLSBuffered is [TCPTLS] behind the write and read buffers of
// [TCPBuffered]: TLS records of up to 16 KiB instead of one per Write, the
// best a TLS-over-TCP application can do for a stream of small messages,
// and what protected Raptor bulk is measured against.
type TCPTLSBuffered struct{}

// Name returns "tcp+tls-buffered".
func (TCPTLSBuffered) Name() string { return "tcp+tls-buffered" }

// Listen opens a TLS 1.3 listener whose conns have a write buffer.
func (TCPTLSBuffered) Listen(ctx context.Context, addr string) (net.Listener, error) {
	return bufferedListener(TCPTLS{}.Listen(ctx, addr))
}

// Dial opens a TLS 1.3 client conn with a write buffer.
func (TCPTLSBuffered) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return bufferedDialed(TCPTLS{}.Dial(ctx, addr))
}
