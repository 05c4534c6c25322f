package reliable

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/udpio"
)

// Tests of reader leadership (leader.go): a blocked Read reads the socket
// itself, and the receive loop gets it back when nobody reads.

// leading reports whether st's Read holds its endpoint's read token.
func leading(st *Stream) bool { return st.s.ep.lead.leader.Load() == st }

// waitLeading waits until st's Read (started by the caller) leads. The
// loop lends the token only after a batch, and takes it back when nobody
// took it for a while, so peer pings the endpoint until the Read has it.
func waitLeading(t *testing.T, st *Stream, peer *Session) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		if leading(st) {
			return true
		}
		peer.mu.Lock()
		peer.pingQueued = true
		peer.mu.Unlock()
		peer.wakeSender()
		return false
	}, func() string {
		l := &st.s.ep.lead
		return "the Read never took the read token: state " + tokName(l.state.Load())
	})
}

func tokName(s int32) string {
	switch s {
	case tokLoop:
		return "loop"
	case tokFree:
		return "free"
	case tokReader:
		return "reader"
	}
	return "?"
}

// echo copies everything st receives back to it until an error.
func echo(st *Stream) {
	buf := make([]byte, 4096)
	for {
		n, err := st.Read(buf)
		if n > 0 {
			if _, werr := st.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// echoOnce writes msg on c and reads the same number of bytes back.
func echoOnce(t *testing.T, c *Stream, msg []byte) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back %d bytes: %v", len(msg), err)
	}
	if string(got) != string(msg) {
		t.Fatalf("echo %q, want %q", got, msg)
	}
}

// readResult runs st.Read in a goroutine and returns its outcome.
func readResult(st *Stream, buf []byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := st.Read(buf)
		ch <- err
	}()
	return ch
}

func waitErr(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Read still blocked after 10s", what)
		return nil
	}
}

// TestLeadPingPong: in a request/response exchange the reading goroutines
// on both sides (dialed session and listener) take the token and keep it.
func TestLeadPingPong(t *testing.T) {
	c, srv := loopStreams(t, nil)
	go echo(srv)
	const rounds = 300
	cg, sg := c.s.ep.lead.gen.Load(), srv.s.ep.lead.gen.Load()
	msg := []byte("ping-pong")
	for range rounds {
		echoOnce(t, c, msg)
	}
	// Nearly every Read on each side led: one take per wait for data.
	if d := c.s.ep.lead.gen.Load() - cg; d < rounds/2 {
		t.Errorf("dialed side: readers took the token %d times in %d round trips, want most", d, rounds)
	}
	if d := srv.s.ep.lead.gen.Load() - sg; d < rounds/2 {
		t.Errorf("listener side: readers took the token %d times in %d round trips, want most", d, rounds)
	}
}

// TestLeadHandBackToLoop: after the reader stops reading, the loop takes
// the socket back: a bulk writer that never reads again gets its
// acknowledgements (it could not write more than its send buffers
// otherwise) and the token ends with the loop.
func TestLeadHandBackToLoop(t *testing.T) {
	c, srv := loopStreams(t, nil)
	go func() {
		// Echo 20 bytes, then read and discard everything.
		b := make([]byte, 1)
		for range 20 {
			if _, err := io.ReadFull(srv, b); err != nil {
				return
			}
			if _, err := srv.Write(b); err != nil {
				return
			}
		}
		io.Copy(io.Discard, srv)
	}()
	for range 20 {
		echoOnce(t, c, []byte("x"))
	}
	l := &c.s.ep.lead
	gen := l.gen.Load()
	if gen == 0 {
		t.Fatal("the client's Read never led")
	}
	// The server reads everything; nobody reads on the client.
	total := 4 * c.s.cfg.SessionSendBuffer
	done := make(chan error, 1)
	go func() {
		msg := make([]byte, 1024)
		for sent := 0; sent < total; sent += len(msg) {
			if _, err := c.Write(msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("bulk write of %d bytes without reading stalled: token %s", total, tokName(l.state.Load()))
	}
	if g := l.gen.Load(); g != gen {
		t.Errorf("a reader took the token %d times while nobody read", g-gen)
	}
	waitFor(t, 10*time.Second, func() bool { return l.state.Load() == tokLoop }, func() string {
		return "the receive loop never took the token back: " + tokName(l.state.Load())
	})
	if p := time.Duration(l.period.Load()); p != l.bound {
		t.Errorf("the loop took the token back with the timer's period at %v, want it back at bound %v", p, l.bound)
	}
}

// TestLeadPeriod: the lend timer's period doubles while readers keep taking
// the token, up to maxLeadPeriods bounds, and never beyond.
func TestLeadPeriod(t *testing.T) {
	var l leadership
	l.init(nil, &Config{MaxAckDelay: 3 * time.Millisecond})
	want := []time.Duration{1500 * time.Microsecond, 3 * time.Millisecond, 6 * time.Millisecond, 6 * time.Millisecond, 6 * time.Millisecond}
	for i, w := range want {
		if p := time.Duration(l.period.Load()); p != w {
			t.Fatalf("after %d busy periods the period is %v, want %v", i, p, w)
		}
		l.readersActive()
	}
	if max := maxLeadPeriods * l.bound; time.Duration(l.period.Load()) > max {
		t.Fatalf("period %v beyond %v", time.Duration(l.period.Load()), max)
	}
}

// TestLeadTwoReaders: two streams of one dialed session, each with its own
// reading goroutine, exchange at once: one leads and dispatches for the
// other, and the token passes between them without a stall.
func TestLeadTwoReaders(t *testing.T) {
	l, s := testPair(t, nil)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go echo(c.(*Stream))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sts [2]*Stream
	for i := range sts {
		st, err := s.OpenStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sts[i] = st
	}
	gen := s.ep.lead.gen.Load()
	errc := make(chan error, len(sts))
	for i, st := range sts {
		go func() {
			msg := []byte{byte('a' + i), 0}
			got := make([]byte, 2)
			for k := range 300 {
				msg[1] = byte(k)
				if _, err := st.Write(msg); err != nil {
					errc <- err
					return
				}
				if _, err := io.ReadFull(st, got); err != nil {
					errc <- err
					return
				}
				if got[0] != msg[0] || got[1] != msg[1] {
					errc <- errors.New("stream " + string(msg[:1]) + " read another's data")
					return
				}
			}
			errc <- nil
		}()
	}
	for range sts {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("two readers on one endpoint stalled: token %s, %d waiters", tokName(s.ep.lead.state.Load()), s.ep.lead.waiters.Load())
		}
	}
	if s.ep.lead.gen.Load() == gen {
		t.Error("no Read ever led")
	}
}

// TestLeadReadDeadline: a read deadline interrupts a leading Read, and the
// socket reads normally afterwards (the interrupt is cleared).
func TestLeadReadDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(st *Stream) // makes the blocked Read time out
	}{
		{"deadline passes", func(st *Stream) { st.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) }},
		{"deadline set in the past", func(st *Stream) { st.SetReadDeadline(time.Now().Add(-time.Second)) }},
		{"SetDeadline in the past", func(st *Stream) { st.SetDeadline(time.Unix(1, 0)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, srv := loopStreams(t, nil)
			go echo(srv)
			echoOnce(t, c, []byte("warm"))
			res := readResult(c, make([]byte, 8))
			waitLeading(t, c, srv.s)
			tc.set(c)
			err := waitErr(t, res, "deadline")
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read after the deadline: %v, want os.ErrDeadlineExceeded", err)
			}
			if leading(c) {
				t.Fatal("the timed-out Read still leads")
			}
			c.SetDeadline(time.Time{})
			for range 20 {
				echoOnce(t, c, []byte("after the deadline"))
			}
		})
	}
}

// TestLeadCloseWhileLeading: a Read that leads returns when its stream or
// session ends, whoever ends it, and nothing hangs afterwards.
func TestLeadCloseWhileLeading(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server bool // the leading Read is the listener's
		end    func(c, srv *Stream, l *Listener)
		want   error // what the Read's error wraps (nil: any error)
	}{
		{"stream Close", false, func(c, _ *Stream, _ *Listener) { c.Close() }, net.ErrClosed},
		{"session CloseWithError", false, func(c, _ *Stream, _ *Listener) { c.s.CloseWithError(CodeApplication, "bye") }, nil},
		{"session Close", false, func(c, _ *Stream, _ *Listener) { c.s.Close() }, nil},
		{"peer closes the session", false, func(_, srv *Stream, _ *Listener) { srv.s.CloseWithError(CodeApplication, "bye") }, nil},
		{"peer resets the stream", false, func(_, srv *Stream, _ *Listener) { srv.Reset(7) }, nil},
		{"listener stream Close", true, func(_, srv *Stream, _ *Listener) { srv.Close() }, net.ErrClosed},
		{"listener Close", true, func(_, _ *Stream, l *Listener) { l.Close() }, nil},
		{"client session ends", true, func(c, _ *Stream, _ *Listener) { c.s.CloseWithError(CodeApplication, "bye") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, s := testPair(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, srv := openAccepted(t, ctx, s, l, []byte("open"))
			if _, err := srv.Write([]byte("ok")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
				t.Fatal(err)
			}
			reader, peer := c, srv.s
			if tc.server {
				reader, peer = srv, c.s
			}
			res := readResult(reader, make([]byte, 8))
			waitLeading(t, reader, peer)
			tc.end(c, srv, l)
			err := waitErr(t, res, tc.name)
			if err == nil {
				t.Fatal("Read returned no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Read: %v, want an error wrapping %v", err, tc.want)
			}
			if leading(reader) {
				t.Fatal("the Read that returned still leads")
			}
			if tc.server {
				l.Close()
				select {
				case <-l.e.readDone:
				case <-time.After(10 * time.Second):
					t.Fatal("the listener's receive loop did not end after Close")
				}
			}
		})
	}
}

// TestLeadOtherSessionWhileLeading: while one session's Read leads a
// listener's socket, another client's handshake and data are dispatched by
// it, and that session's own reader is served.
func TestLeadOtherSessionWhileLeading(t *testing.T) {
	l, sa := testPair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca, srvA := openAccepted(t, ctx, sa, l, []byte("a"))
	bufA := make([]byte, 1)
	res := readResult(srvA, bufA)
	waitLeading(t, srvA, sa)
	handshakes := l.e.stats.c[CounterPacketsReceived].Load()

	// A second client: its handshake, its stream and its data all arrive
	// while srvA's Read leads.
	sb, err := Dial(ctx, l.Addr().String(), pin(l, nil))
	if err != nil {
		t.Fatalf("dial while another session's reader leads: %v", err)
	}
	defer sb.CloseWithError(0, "done")
	cb, srvB := openAccepted(t, ctx, sb, l, []byte("b"))
	go echo(srvB)
	for range 50 {
		echoOnce(t, cb, []byte("bb"))
	}
	if l.e.stats.c[CounterPacketsReceived].Load() == handshakes {
		t.Error("the listener counted no handshake packet")
	}
	if !leading(srvA) {
		t.Error("session A's Read stopped leading though no data came for it")
	}
	// Now data for A: its leading Read returns it.
	if _, err := ca.Write([]byte("A")); err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, res, "data for the leader"); err != nil {
		t.Fatal(err)
	}
	if bufA[0] != 'A' {
		t.Fatalf("leader read %q, want \"A\"", bufA)
	}
}

// noDeadlineConn hides SetReadDeadline: the PacketConn cannot interrupt a
// blocked ReadBatch, so readers must not lead.
type noDeadlineConn struct{ PacketConn }

// TestLeadFallbackWithoutDeadline: over a PacketConn without
// SetReadDeadline (DPDK, loss injectors) only the loop reads, as before.
func TestLeadFallbackWithoutDeadline(t *testing.T) {
	l := serveLoopback(t, nil, func(c net.Conn) { go echo(c.(*Stream)) })
	pc, err := udpio.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := DialPacket(ctx, noDeadlineConn{pc}, l.e.pc.LocalAddr(), pin(l, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseWithError(0, "done")
	if s.ep.lead.dl != nil {
		t.Fatal("a PacketConn without SetReadDeadline got reader leadership")
	}
	c, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		echoOnce(t, c, []byte("fallback"))
	}
	if g := s.ep.lead.gen.Load(); g != 0 {
		t.Fatalf("readers took the token %d times without leadership", g)
	}
}

// BenchmarkWriteAfterRead1K is a one-way stream of 1 KiB messages from a
// writer that read once before (so its endpoint lent the read token to a
// Read) and never reads again: the receive loop must take the socket back
// for the writer's acknowledgements. "loop" is the same with reader
// leadership off: the two should match.
func BenchmarkWriteAfterRead1K(b *testing.B) {
	for _, bc := range []struct {
		name string
		off  bool
	}{{"lead", false}, {"loop", true}} {
		b.Run(bc.name, func(b *testing.B) {
			disableLeadership.Store(bc.off)
			defer disableLeadership.Store(false)
			w, r := loopStreams(b, nil)
			one := make([]byte, 1)
			if _, err := r.Write(one); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(w, one); err != nil {
				b.Fatal(err)
			}
			msg, buf := make([]byte, 1024), make([]byte, 1024)
			if err := oneWay(w, r, msg, buf, 8000); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(1024)
			b.ResetTimer()
			if err := oneWay(w, r, msg, buf, b.N); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkPingPong64Lead is BenchmarkPingPong64 with reader leadership on
// and off, in one run.
func BenchmarkPingPong64Lead(b *testing.B) {
	for _, bc := range []struct {
		name string
		off  bool
	}{{"lead", false}, {"loop", true}} {
		b.Run(bc.name, func(b *testing.B) {
			disableLeadership.Store(bc.off)
			defer disableLeadership.Store(false)
			benchPingPong64(b, nil)
		})
	}
}

// openAccepted opens a stream on s, writes first on it, accepts it on l and
// reads first there: a stream both sides know, with nothing in flight.
func openAccepted(t *testing.T, ctx context.Context, s *Session, l *Listener, first []byte) (c, srv *Stream) {
	t.Helper()
	c, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	if srv, err = l.AcceptStream(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(srv, make([]byte, len(first))); err != nil {
		t.Fatal(err)
	}
	return c, srv
}

// TestRearmInlineCadence: while Writes send inline the run loop keeps the
// session timer at most one ACK delay ahead (so the next inline send need
// not move it earlier); an ACK delay after the last inline send it goes
// back to the exact deadline, and it never fires later than that deadline.
func TestRearmInlineCadence(t *testing.T) {
	c, srv := loopStreams(t, nil)
	go echo(srv)
	for range 20 {
		echoOnce(t, c, []byte("tick"))
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inlineAt.IsZero() {
		t.Fatal("no Write sent inline in a request/response exchange")
	}
	ack := s.cfg.MaxAckDelay
	next := s.nextDeadlineLocked() // the idle timeout at least
	if next.IsZero() {
		t.Fatal("an established session has no deadline")
	}
	// Look from two ACK delays before the next deadline (rearmLocked
	// takes the time it is called at; nextDeadlineLocked does not depend
	// on it), so that the cadence comes first.
	now := next.Add(-2 * ack)

	s.inlineAt = now.Add(-ack / 2)
	s.rearmLocked(now)
	if want := now.Add(ack); !s.armed.Equal(want) {
		t.Errorf("inline send %v ago: timer at now+%v, want now+%v (next deadline now+%v)", ack/2, s.armed.Sub(now), ack, next.Sub(now))
	}
	s.rearmLocked(next.Add(-ack / 2))
	if !s.armed.Equal(next) && s.armed.After(next) {
		t.Errorf("timer at %v after the next deadline", s.armed.Sub(next))
	}

	s.inlineAt = now.Add(-2 * ack)
	s.rearmLocked(now)
	if !s.armed.Equal(next) {
		t.Errorf("inline send %v ago: timer at now+%v, want the exact deadline now+%v", 2*ack, s.armed.Sub(now), next.Sub(now))
	}
}
