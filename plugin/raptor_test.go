package plugin

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestGatewayAndProxyOverRaptor chains TCP client -> proxy (TCP in, Raptor
// out) -> gateway (Raptor in, TCP out) -> TCP echo server.
func TestGatewayAndProxyOverRaptor(t *testing.T) {
	up := echoServer(t)
	gw, gwAddr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}}, "raptor://127.0.0.1:0")
	px, pxAddr, _ := startRelay(t, RelayConfig{Upstreams: []string{"raptor://" + gwAddr}}, "tcp://127.0.0.1:0")
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", pxAddr)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, strings.Repeat("raptor", 10000))
		c.Close()
	}
	// The last relay may still be winding down after the client has its
	// echo: a drain waits for it, so the counters are final.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatalf("gateway drain: %v", err)
	}
	if st := gw.Stats(); st.Accepted != 3 || st.BytesDown != 3*60000 {
		t.Fatalf("gateway stats %+v", st)
	}
	if st := px.Stats(); st.Accepted != 3 || st.UpstreamErrors != 0 {
		t.Fatalf("proxy stats %+v", st)
	}
}

func TestGatewayUnreachableUpstreamOverRaptor(t *testing.T) {
	_, gwAddr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + deadAddr(t)}}, "raptor://127.0.0.1:0")
	c := dialRaptor(t, gwAddr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello")) // the gateway dials its upstream on the first bytes
	expectReset(t, c, CodeUpstreamUnreachable)
}

func TestListenDualSamePort(t *testing.T) {
	tr := New()
	defer tr.Close()
	ln, err := tr.ListenDual("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln.SetAdvertised("localhost")
	_, port, _ := net.SplitHostPort(ln.Listeners()[0].Addr().String())
	if _, rport, _ := net.SplitHostPort(ln.Listeners()[1].Addr().String()); rport != port {
		t.Fatalf("tcp port %s, raptor port %s", port, rport)
	}
	if ln.Addr().String() != "localhost:"+port {
		t.Fatalf("advertised %s", ln.Addr())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			c.Read(buf)
			c.Write(buf)
			c.Close()
		}
	}()
	for _, u := range []string{"tcp://127.0.0.1:" + port, "raptor://127.0.0.1:" + port} {
		c, err := tr.Dial(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, c, "ping")
		c.Close()
	}
	<-done
	ln.Close()
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
	ln.Wait()
}

// TestRaptorDrainRefusesNewStreamsAndTripsBreaker: while a Raptor gateway
// drains, its listener stays open (the session carrying the busy stream
// lives on) and new streams are reset with CodeDraining, which opens the
// failover dialer's breaker for that gateway at once.
func TestRaptorDrainRefusesNewStreamsAndTripsBreaker(t *testing.T) {
	release := make(chan struct{}, 1)
	up := gatedKafkaServer(t, release)
	gw, gwAddr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, Framing: FramingKafka}, "raptor://127.0.0.1:0")
	tr := New()
	defer tr.Close()
	other := echoServer(t) // a second, healthy endpoint
	f, err := NewFailoverDialer(tr, []string{"raptor://" + gwAddr, "tcp://" + other.Addr().String()}, FailoverConfig{OpenTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Two connections spread over both endpoints; the Raptor one holds a
	// request in flight.
	var busy net.Conn
	for i := 0; i < 2; i++ {
		c, err := f.Dial(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.(*failoverConn).fe == f.eps[0] {
			busy = c
		}
	}
	if busy == nil {
		t.Fatalf("two dials did not spread over both endpoints: %+v", f.Status())
	}
	busy.SetDeadline(time.Now().Add(20 * time.Second))
	busy.Write(append(binary.BigEndian.AppendUint32(nil, 2), "hi"...))
	waitUntil(t, "gateway forwarded the request", func() bool { return gw.Stats().BytesUp >= 6 })
	shut := make(chan error, 1)
	go func() { shut <- gw.Shutdown(context.Background()) }()
	waitUntil(t, "gateway draining", gw.isDraining)
	// A new stream to the draining gateway is reset with CodeDraining.
	c, err := tr.Dial(t.Context(), "raptor://"+gwAddr)
	if err != nil {
		t.Fatal(err)
	}
	fc := &failoverConn{Conn: c, f: f, fe: f.eps[0]}
	fc.Write([]byte{0, 0, 0, 1, 'x'})
	fc.SetReadDeadline(time.Now().Add(10 * time.Second))
	expectReset(t, fc, CodeDraining)
	if s := f.Status()[0].State; s != "open" {
		t.Fatalf("breaker %s after the draining reset, want open", s)
	}
	fc.Close()
	// The busy stream still gets its response, then the drain completes.
	release <- struct{}{}
	resp, err := io.ReadAll(busy)
	// EOF, or the session's graceful close when it overtakes the FIN.
	if (err != nil && !errors.Is(err, net.ErrClosed)) || len(resp) != 6 {
		t.Fatalf("busy stream during drain: %d bytes, %v", len(resp), err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if st := gw.Stats(); st.Refused != 1 || st.Drained != 1 || st.ForceClosed != 0 {
		t.Fatalf("stats %+v", st)
	}
	// New connections now go to the healthy endpoint.
	c2, err := f.Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c2, "ok")
	c2.Close()
}

// TestRaptorCloseCutsLiveStreams: Close on a Raptor gateway with a request
// in flight resets the client's stream with CodeDraining and counts it in
// ForceClosed. Closing the listener first ended the session under the
// stream: the client saw a lost session, and the cut was counted nowhere.
func TestRaptorCloseCutsLiveStreams(t *testing.T) {
	up := gatedKafkaServer(t, make(chan struct{})) // never answers
	gw, gwAddr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + up.Addr().String()}, Framing: FramingKafka}, "raptor://127.0.0.1:0")
	c := dialRaptor(t, gwAddr)
	c.Write(append(binary.BigEndian.AppendUint32(nil, 2), "hi"...))
	waitUntil(t, "gateway forwarded the request", func() bool { return gw.Stats().BytesUp >= 6 })
	gw.Close()
	expectReset(t, c, CodeDraining)
	if st := gw.Stats(); st.ForceClosed != 1 || st.Completed != 0 || st.Active != 0 {
		t.Fatalf("stats after Close %+v, want the live stream counted in ForceClosed", st)
	}
}

// dialRaptor opens a stream to the Raptor listener at addr on a transport of
// its own; both are closed when the test ends.
func dialRaptor(t *testing.T, addr string) net.Conn {
	t.Helper()
	tr := New()
	t.Cleanup(func() { tr.Close() })
	c, err := tr.Dial(t.Context(), "raptor://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
