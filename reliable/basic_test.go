package reliable

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func testPair(t *testing.T, cfg *Config) (*Listener, *Session) {
	t.Helper()
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Dial(ctx, l.Addr().String(), pin(l, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.CloseWithError(0, "test done") })
	return l, s
}

func TestEchoLoopback(t *testing.T) {
	l, s := testPair(t, nil)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]byte, 4<<20)
	rand.Read(want)
	go func() {
		st.Write(want)
		st.CloseWrite()
	}()
	got, err := io.ReadAll(st)
	if err != nil {
		t.Fatalf("read: %v (got %d bytes)\nclient: %s\nserver: %s", err, len(got), dumpSession(s), dumpListener(l))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("echo mismatch: got %d bytes want %d", len(got), len(want))
	}
	t.Logf("client stats %+v", s.Stats())
}

// TestSessionLimitRefuses: a listener at MaxSessions refuses a new session
// with a clear error instead of letting the dialer time out.
func TestSessionLimitRefuses(t *testing.T) {
	l, err := Listen("127.0.0.1:0", &Config{MaxSessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		s, err := Dial(ctx, l.Addr().String(), pin(l, nil))
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		defer s.CloseWithError(0, "")
	}
	_, err = Dial(ctx, l.Addr().String(), pin(l, nil))
	var se *SessionError
	if !errors.As(err, &se) || se.Code != CodeRefused || !se.Remote {
		t.Fatalf("third dial: %v, want a refusal (code %d) from the peer", err, CodeRefused)
	}
	t.Logf("refused: %v", err)
	if got := l.Stats().Counters[CounterDropsSessionLimit]; got == 0 {
		t.Fatal("DropsSessionLimit not counted")
	}
}

// TestConfigErrorsNameTheField: invalid configuration is rejected up front.
func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{MaxDatagramSize: 100}, "MaxDatagramSize 100"},
		{Config{MinRTO: time.Second, MaxRTO: time.Millisecond}, "MinRTO"},
		{Config{Congestion: "bbr9"}, `"bbr9"`},
		{Config{StreamReceiveWindow: 8 << 20, SessionReceiveWindow: 1 << 20}, "StreamReceiveWindow"},
	} {
		_, err := Listen("127.0.0.1:0", &tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %+v: error %v, want it to name %s", tc.cfg, err, tc.want)
		}
	}
}

// TestDialerStats: a Dialer reports the counters of its sessions, including
// the handshake packets its endpoint exchanged.
func TestDialerStats(t *testing.T) {
	l := serveLoopback(t, nil, func(c net.Conn) { go io.Copy(c, c) })
	d := Dialer{Config: pin(l, nil)}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	io.ReadFull(c, make([]byte, 4))
	st := d.Stats()
	if st.Counters[CounterStreamBytesSent] != 4 || st.Counters[CounterStreamBytesReceived] != 4 || st.Counters[CounterPacketsSent] < 3 || st.Counters[CounterSessionsOpened] != 1 {
		t.Fatalf("dialer stats %+v: want 4 stream bytes each way, the handshake's packets and one session", st)
	}
	if ls := l.Stats(); ls.Counters[CounterPacketsReceived] < 3 {
		t.Fatalf("listener counted %d packets, want the handshake's and the data's", ls.Counters[CounterPacketsReceived])
	}
}

// serveLoopback listens on 127.0.0.1 with cfg and hands every accepted conn
// to handle on the accept goroutine (a handle that blocks starts its own);
// the listener closes when the test ends.
func serveLoopback(t *testing.T, cfg *Config, handle func(net.Conn)) *Listener {
	t.Helper()
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	return l
}
