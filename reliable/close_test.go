package reliable

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// TestSimGracefulClose: bytes written before Session.Close are all delivered,
// through loss, and the peer then sees a no-error close.
func TestSimGracefulClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, 5, simnet.LinkConfig{Loss: 0.05, Delay: 2 * time.Millisecond}, nil)
		defer nw.Close()
		st, _ := s.OpenStream(context.Background())
		want := bytes.Repeat([]byte("raptor!"), 100000)
		if _, err := st.Write(want); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte)
		go func() {
			acc, err := l.AcceptStream(context.Background())
			if err != nil {
				got <- nil
				return
			}
			b := make([]byte, len(want))
			n, _ := io.ReadFull(acc, b)
			got <- b[:n]
		}()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("peer read %d of %d bytes written before Close", len(b), len(want))
		}
		var se *SessionError
		if err := s.Err(); !errors.As(err, &se) || se.Code != CodeNoError || se.Remote {
			t.Fatalf("session error after Close: %v, want a local close with code 0", s.Err())
		}
		l.Close()
	})
}

// TestSimAbortiveClose: CloseWithError reaches the peer with its code and reason.
func TestSimAbortiveClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, 6, simnet.LinkConfig{Delay: time.Millisecond}, nil)
		defer nw.Close()
		st, _ := s.OpenStream(context.Background())
		st.Write([]byte("x"))
		acc, err := l.AcceptStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		one := make([]byte, 1)
		io.ReadFull(acc, one)
		s.CloseWithError(CodeFirstApplication+7, "shutting down")
		_, err = acc.Read(one)
		var se *SessionError
		if !errors.As(err, &se) || !se.Remote || se.Code != CodeFirstApplication+7 || se.Reason != "shutting down" {
			t.Fatalf("peer read error %v, want the remote close with code %d", err, CodeFirstApplication+7)
		}
		if _, err := st.Write([]byte("y")); err == nil {
			t.Fatal("write after CloseWithError succeeded")
		}
		l.Close()
	})
}

// TestSimKeepAlive: an idle session with an open stream outlives IdleTimeout
// many times over because keepalives are answered.
func TestSimKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{IdleTimeout: 3 * time.Second}
		nw, l, s := simPair(t, 8, simnet.LinkConfig{Delay: time.Millisecond}, cfg)
		defer nw.Close()
		st, _ := s.OpenStream(context.Background())
		st.Write([]byte("open"))
		if _, err := l.AcceptStream(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second) // virtual time, idle
		if err := s.Err(); err != nil {
			t.Fatalf("idle session with keepalives died: %v", err)
		}
		if _, err := st.Write([]byte("still here")); err != nil {
			t.Fatal(err)
		}
		s.CloseWithError(0, "")
		l.Close()
	})
}

// TestSimFlushDelayCoalesces: with FlushDelay, small writes made within the
// delay leave in one datagram.
func TestSimFlushDelayCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := &Config{FlushDelay: 5 * time.Millisecond}
		nw, l, s := simPair(t, 9, simnet.LinkConfig{Delay: time.Millisecond}, cfg)
		defer nw.Close()
		st, _ := s.OpenStream(context.Background())
		acc := make(chan *Stream)
		go func() {
			a, _ := l.AcceptStream(context.Background())
			acc <- a
		}()
		st.Write([]byte("hi"))
		a := <-acc
		buf := make([]byte, 2)
		io.ReadFull(a, buf)
		synctest.Wait()
		// Datagram size probes (PINGs padded to a size, sent by the run loop
		// once the session carries data, spaced by the RTT) may leave in the
		// same interval: they are not the writes' datagrams.
		sentNotProbes := func() uint64 {
			c := s.Stats().Counters
			return c[CounterPacketsSent] - c[CounterProbesSent]
		}
		before := sentNotProbes()
		for i := 0; i < 20; i++ {
			st.Write([]byte("0123456789"))
		}
		got := make([]byte, 200)
		if _, err := io.ReadFull(a, got); err != nil {
			t.Fatal(err)
		}
		if sent := sentNotProbes() - before; sent > 2 {
			t.Fatalf("20 small writes took %d datagrams (size probes not counted) with a 5ms FlushDelay, want 1 (2 with a piggybacked ACK)", sent)
		}
		s.CloseWithError(0, "")
		l.Close()
	})
}

// TestSimWriteAfterPeerFin: an accepted stream whose peer has half-closed
// still delivers what the application writes afterwards (the stream must not
// be retired while its send side is open).
func TestSimWriteAfterPeerFin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, 12, simnet.LinkConfig{Delay: time.Millisecond}, nil)
		defer nw.Close()
		st, _ := s.OpenStream(context.Background())
		st.Write([]byte("request"))
		st.CloseWrite()
		acc, err := l.AcceptStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req, err := io.ReadAll(acc)
		if err != nil || string(req) != "request" {
			t.Fatalf("server read %q, %v", req, err)
		}
		time.Sleep(100 * time.Millisecond) // virtual: everything acknowledged, both directions quiet
		synctest.Wait()
		if _, err := acc.Write([]byte("late response")); err != nil {
			t.Fatalf("write after the peer's FIN: %v", err)
		}
		acc.Close()
		resp, err := io.ReadAll(st)
		if err != nil || string(resp) != "late response" {
			t.Fatalf("client read %q, %v", resp, err)
		}
		s.CloseWithError(0, "")
		l.Close()
	})
}

// TestSimResetAndCloseOrder: Reset on an accepted stream that sent nothing
// reaches the peer as a *StreamError; a stream closed before its listener
// reads to io.EOF at the peer, not the session's close.
func TestSimResetAndCloseOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, 13, simnet.LinkConfig{Delay: time.Millisecond}, nil)
		defer nw.Close()
		a, _ := s.OpenStream(context.Background())
		a.Write([]byte("a"))
		accA, _ := l.AcceptStream(context.Background())
		one := make([]byte, 1)
		io.ReadFull(accA, one)
		accA.Reset(CodeFirstApplication + 1)
		accA.Close()
		_, err := a.Read(one)
		var se *StreamError
		if !errors.As(err, &se) || se.Code != CodeFirstApplication+1 || !se.Remote {
			t.Fatalf("read after the peer's reset: %v, want a remote *StreamError with code %d", err, CodeFirstApplication+1)
		}
		b, _ := s.OpenStream(context.Background())
		b.Write([]byte("b"))
		accB, _ := l.AcceptStream(context.Background())
		io.ReadFull(accB, one)
		accB.Write([]byte("bye"))
		accB.Close()
		l.Close()
		got, err := io.ReadAll(b)
		if err != nil || string(got) != "bye" {
			t.Fatalf("read after stream close then listener close: %q, %v; want \"bye\" and io.EOF", got, err)
		}
	})
}
