package plugin

import (
	"bufio"
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
	if st := gw.Stats(); st.Accepted != 3 || st.BytesDown != 3*60000 {
		t.Fatalf("gateway stats %+v", st)
	}
	if st := px.Stats(); st.Accepted != 3 || st.UpstreamErrors != 0 {
		t.Fatalf("proxy stats %+v", st)
	}
}

func TestGatewayUnreachableUpstreamOverRaptor(t *testing.T) {
	_, gwAddr, _ := startRelay(t, RelayConfig{Upstreams: []string{"tcp://" + deadAddr(t)}}, "raptor://127.0.0.1:0")
	tr := New()
	defer tr.Close()
	c, err := tr.Dial(t.Context(), "raptor://"+gwAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ErrLinePrefix+"upstream-unreachable tcp://") {
		t.Fatalf("line %q, %v", line, err)
	}
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
