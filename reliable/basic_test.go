package reliable

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
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
	s, err := Dial(ctx, l.Addr().String(), cfg)
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
