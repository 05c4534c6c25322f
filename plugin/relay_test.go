package plugin

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raptormq/raptor/reliable"
)

// echoServer accepts on a loopback TCP port and echoes each connection until
// EOF, then half-closes. It stops when the test ends.
// tcpServer serves each connection of a loopback TCP listener with handle
// (stop closes when the test ends); the cleanup waits for every handler.
func tcpServer(t *testing.T, handle func(c net.Conn, stop <-chan struct{})) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c, stop)
			}()
		}
	}()
	t.Cleanup(func() { close(stop); ln.Close(); wg.Wait() })
	return ln
}

func echoServer(t *testing.T) net.Listener {
	t.Helper()
	return tcpServer(t, func(c net.Conn, _ <-chan struct{}) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// waitUntil polls cond every millisecond until it holds; it fails the test
// after 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-time.After(time.Millisecond):
		case <-deadline:
			t.Fatalf("still waiting after 20 s: %s", what)
		}
	}
}

func startRelay(t *testing.T, cfg RelayConfig, listen string) (*Relay, string, chan error) {
	t.Helper()
	r, ln, served := startRelayListener(t, cfg, listen)
	return r, ln.Addr().String(), served
}

// startRelayListener is startRelay returning the listener the relay serves.
func startRelayListener(t *testing.T, cfg RelayConfig, listen string) (*Relay, net.Listener, chan error) {
	t.Helper()
	r, err := NewRelay(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := New()
	t.Cleanup(func() { tr.Close() })
	ln, err := tr.Listen(listen)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln); close(served) }()
	t.Cleanup(func() { r.Close(); <-served })
	return r, ln, served
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q: got %q, %v", msg, got, err)
	}
}

func TestRelayForwardsAndHalfCloses(t *testing.T) {
	up := echoServer(t)
	r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}}, "tcp://127.0.0.1:0")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "hello raptor")
	c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v; want EOF", rest, err)
	}
	// The client sees EOF as soon as the relay forwards the half-close,
	// a moment before the relay counts the connection complete.
	waitFor(t, "the connection completed", func() bool { return r.Stats().Completed == 1 })
	r.Close()
	st := r.Stats()
	if st.Accepted != 1 || st.Completed != 1 || st.BytesUp != 12 || st.BytesDown != 12 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// expectReset reads c until it fails and checks that the relay reset the
// Raptor stream with code.
func expectReset(t *testing.T, c net.Conn, code reliable.ErrorCode) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var se *reliable.StreamError
	if !errors.As(err, &se) || !se.Remote || se.Code != code {
		t.Fatalf("after %d bytes: %v; want a reset by the peer with code %#x (%v)", n, err, uint64(code), code)
	}
	if n != 0 {
		t.Fatalf("relay wrote %d bytes into a stream it refused", n)
	}
}

// expectTCPRefused checks that the relay closed c without writing a byte.
func expectTCPRefused(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if n != 0 {
		t.Fatalf("relay wrote %d bytes into a connection it refused", n)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("refused connection: %v; want EOF or a reset", err)
	}
}

// dialRefused dials addr and checks that the relay refused the
// connection: a reset during the dial, or a close without a byte.
func dialRefused(t *testing.T, dial func(network, addr string) (net.Conn, error), addr string) {
	t.Helper()
	c, err := dial("tcp", addr)
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial %s: %v; want success or a reset", addr, err)
		}
		return
	}
	defer c.Close()
	expectTCPRefused(t, c)
}

// countingServer is an echo server that counts the connections it
// accepted and how many are still open.
type countingServer struct {
	net.Listener
	accepted, open atomic.Int64
}

func newCountingServer(t *testing.T) *countingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &countingServer{Listener: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.open.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.open.Add(-1)
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-time.After(2 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		}
	}
}

func TestRelayUnreachableUpstreamKeepsServingOthers(t *testing.T) {
	for _, scheme := range []string{"tcp", "raptor"} {
		t.Run(scheme, func(t *testing.T) {
			up := echoServer(t)
			upAddr := up.Addr().String()
			r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + upAddr}, DialTimeout: 2 * time.Second}, scheme+"://127.0.0.1:0")
			tr := New()
			defer tr.Close()
			// B is relayed while the upstream is up.
			b, err := tr.Dial(t.Context(), scheme+"://"+addr)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			roundTrip(t, b, "before")
			// The upstream stops accepting; its connection to B lives on.
			up.Close()
			a, err := tr.Dial(t.Context(), scheme+"://"+addr)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			a.Write([]byte("hello")) // the relay dials on the first bytes
			if scheme == "tcp" {
				expectTCPRefused(t, a)
			} else {
				expectReset(t, a, CodeUpstreamUnreachable)
			}
			roundTrip(t, b, "after") // B still served
			if st := r.Stats(); st.UpstreamErrors != 1 {
				t.Fatalf("UpstreamErrors = %d, want 1", st.UpstreamErrors)
			}
		})
	}
}

func TestRelayBusy(t *testing.T) {
	up := echoServer(t)
	r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, MaxStreams: 1}, "tcp://127.0.0.1:0")
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	roundTrip(t, a, "x")
	dialRefused(t, net.Dial, addr)
	roundTrip(t, a, "still")
	if st := r.Stats(); st.Rejected != 1 {
		t.Fatalf("Rejected = %d", st.Rejected)
	}
}

// TestRelayDialsOnFirstBytes: a silent client costs no upstream
// connection and is closed after FirstByteTimeout; a client that speaks
// is relayed.
func TestRelayDialsOnFirstBytes(t *testing.T) {
	up := newCountingServer(t)
	r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, FirstByteTimeout: 150 * time.Millisecond}, "tcp://127.0.0.1:0")
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	talker, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	roundTrip(t, talker, "hello")
	expectTCPRefused(t, silent)
	waitFor(t, "the silent connection counted and removed", func() bool { st := r.Stats(); return st.IdleClosed == 1 && st.Active == 1 })
	if n := up.accepted.Load(); n != 1 {
		t.Fatalf("upstream accepted %d connections, want 1 (the client that spoke)", n)
	}
	if st := r.Stats(); st.UpstreamActive != 1 || st.Active != 1 {
		t.Fatalf("stats %+v; want one relayed connection with one upstream", st)
	}
}

// TestRelayIdleTimeout: a relayed connection that carries nothing for
// IdleTimeout is closed, a Raptor client stream reset with CodeIdle, and
// its upstream connection released.
func TestRelayIdleTimeout(t *testing.T) {
	for _, scheme := range []string{"tcp", "raptor"} {
		t.Run(scheme, func(t *testing.T) {
			up := newCountingServer(t)
			r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, IdleTimeout: 200 * time.Millisecond}, scheme+"://127.0.0.1:0")
			tr := New()
			defer tr.Close()
			c, err := tr.Dial(t.Context(), scheme+"://"+addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			roundTrip(t, c, "once")
			if scheme == "tcp" {
				expectTCPRefused(t, c)
			} else {
				expectReset(t, c, CodeIdle)
			}
			if d := time.Since(start); d < 200*time.Millisecond {
				t.Fatalf("closed after %v, before the idle timeout", d)
			}
			waitFor(t, "the upstream connection released", func() bool { return up.open.Load() == 0 })
			waitFor(t, "the connection removed", func() bool { return r.Stats().Active == 0 })
			if st := r.Stats(); st.IdleClosed != 1 || st.UpstreamActive != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestRelayPerSourceAndSessionCaps: one source or one session at its cap
// is refused more streams; other sources and sessions are still served.
func TestRelayPerSourceAndSessionCaps(t *testing.T) {
	up := echoServer(t)
	upURL := "tcp://" + up.Addr().String()
	t.Run("source", func(t *testing.T) {
		r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{upURL}, MaxStreamsPerSource: 2}, "tcp://127.0.0.1:0")
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c, "mine")
		}
		dialRefused(t, net.Dial, addr)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		other, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		roundTrip(t, other, "another source")
		if st := r.Stats(); st.SourceRejected != 1 || st.Rejected != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("session", func(t *testing.T) {
		r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{upURL}, MaxStreamsPerSession: 2}, "raptor://127.0.0.1:0")
		tr := New()
		defer tr.Close()
		for i := 0; i < 2; i++ {
			c, err := tr.Dial(t.Context(), "raptor://"+addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c, "mine")
		}
		third, err := tr.Dial(t.Context(), "raptor://"+addr)
		if err != nil {
			t.Fatal(err)
		}
		defer third.Close()
		third.Write([]byte("x"))
		expectReset(t, third, CodeBusy)
		tr2 := New() // a second session from the same source
		defer tr2.Close()
		other, err := tr2.Dial(t.Context(), "raptor://"+addr)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		roundTrip(t, other, "another session")
		if st := r.Stats(); st.SourceRejected != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestRelayReleasesUpstreamWhenClientGoes: a Raptor client whose session
// ends abruptly releases its upstream connection at once, without waiting
// for any timeout.
func TestRelayReleasesUpstreamWhenClientGoes(t *testing.T) {
	up := newCountingServer(t)
	r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}}, "raptor://127.0.0.1:0")
	tr := New()
	defer tr.Close()
	c, err := tr.Dial(t.Context(), "raptor://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "hello")
	c.(*reliable.Stream).Session().CloseWithError(reliable.CodeApplication, "client crashed")
	waitFor(t, "the upstream connection released", func() bool { st := r.Stats(); return up.open.Load() == 0 && st.UpstreamActive == 0 && st.Active == 0 })
	if st := r.Stats(); st.IdleClosed != 0 || st.Completed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// gatedKafkaServer answers each length-prefixed request with an equal frame,
// but only after a token arrives on release.
func gatedKafkaServer(t *testing.T, release <-chan struct{}) net.Listener {
	t.Helper()
	return tcpServer(t, func(c net.Conn, stop <-chan struct{}) {
		for {
			var hdr [4]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
			if _, err := io.ReadFull(c, body); err != nil {
				return
			}
			select {
			case <-release:
			case <-stop:
				return
			}
			c.Write(append(hdr[:], body...))
		}
	})
}

func TestRelayDrainWaitsForResponse(t *testing.T) {
	release := make(chan struct{}, 4)
	up := gatedKafkaServer(t, release)
	r, ln, served := startRelayListener(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, Framing: FramingKafka}, "tcp://127.0.0.1:0")
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	req := append(binary.BigEndian.AppendUint32(nil, 5), "hello"...)
	release <- struct{}{}
	c.Write(req) // one full exchange first
	if _, err := io.ReadFull(c, make([]byte, 9)); err != nil {
		t.Fatal(err)
	}
	c.Write(req) // in flight while draining
	// Wait until the relay has forwarded the request before draining.
	waitUntil(t, "relay forwarded the request", func() bool { return r.Stats().BytesUp >= 18 })
	shut := make(chan error, 1)
	go func() { shut <- r.Shutdown(context.Background()) }()
	if err := <-served; !errors.Is(err, ErrRelayClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request outstanding", err)
	default:
	}
	// The relay closed its listener. (Dialing its address to see was flaky:
	// a listener of a test running beside this one can take the freed port.)
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("draining relay's listener: Accept returned %v, want it closed", err)
	}
	release <- struct{}{}
	resp, err := io.ReadAll(c)
	if err != nil || len(resp) != 9 {
		t.Fatalf("response during drain: %d bytes, %v; want 9 then EOF", len(resp), err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if st := r.Stats(); st.Drained != 1 || st.ForceClosed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRelayDrainDeadlineForceCloses(t *testing.T) {
	up := gatedKafkaServer(t, make(chan struct{})) // never answers
	r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, Framing: FramingKafka}, "tcp://127.0.0.1:0")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(append(binary.BigEndian.AppendUint32(nil, 1), 'x'))
	waitUntil(t, "relay forwarded the request", func() bool { return r.Stats().BytesUp >= 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if st := r.Stats(); st.ForceClosed != 1 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
	r.Close() // idempotent
}

func TestRelayRejectsBadConfig(t *testing.T) {
	r, err := NewRelay(RelayConfig{}) // fine for ServeUpstream only
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Serve(ln); err == nil || !strings.Contains(err.Error(), "Upstreams") {
		t.Fatalf("Serve without upstreams: %v", err)
	}
	if err := r.ServeUpstream(ln, "udp://127.0.0.1:1"); err == nil {
		t.Fatal("ServeUpstream accepted a bad scheme")
	}
	_, err = NewRelay(RelayConfig{Upstreams: []string{"kafka://127.0.0.1:9092"}})
	var se *SchemeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "raptor://") {
		t.Fatalf("bad scheme: %v", err)
	}
}
