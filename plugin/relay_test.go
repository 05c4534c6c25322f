package plugin

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
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
	return r, ln.Addr().String(), served
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
	r.Close()
	st := r.Stats()
	if st.Accepted != 1 || st.Completed != 1 || st.BytesUp != 12 || st.BytesDown != 12 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRelayUnreachableUpstreamKeepsServingOthers(t *testing.T) {
	up := echoServer(t)
	upAddr := up.Addr().String()
	r, addr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + upAddr}, DialTimeout: 2 * time.Second}, "tcp://127.0.0.1:0")
	// B is relayed while the upstream is up.
	b, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	roundTrip(t, b, "before")
	// The upstream stops accepting; its connection to B lives on.
	up.Close()
	a, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(a).ReadString('\n')
	if err != nil {
		t.Fatalf("reading error line: %q, %v", line, err)
	}
	want := ErrLinePrefix + "upstream-unreachable tcp://" + upAddr + ": "
	if !strings.HasPrefix(line, want) || !strings.Contains(line, "refused") {
		t.Fatalf("error line %q; want prefix %q naming the cause", line, want)
	}
	roundTrip(t, b, "after") // B still served
	if st := r.Stats(); st.UpstreamErrors != 1 {
		t.Fatalf("UpstreamErrors = %d, want 1", st.UpstreamErrors)
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
	b, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.SetDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(b).ReadString('\n')
	if line != ErrLinePrefix+"busy max-streams=1\n" {
		t.Fatalf("busy line %q", line)
	}
	roundTrip(t, a, "still")
	if st := r.Stats(); st.Rejected != 1 {
		t.Fatalf("Rejected = %d", st.Rejected)
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
	r, addr, served := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, Framing: FramingKafka}, "tcp://127.0.0.1:0")
	c, err := net.Dial("tcp", addr)
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
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("draining relay still accepts")
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
	if _, err := NewRelay(RelayConfig{}); err == nil {
		t.Fatal("no upstream accepted")
	}
	_, err := NewRelay(RelayConfig{Upstreams: []string{"kafka://127.0.0.1:9092"}})
	var se *SchemeError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "raptor://") {
		t.Fatalf("bad scheme: %v", err)
	}
}
