package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raptormq/raptor/reliable"
	"github.com/raptormq/raptor/wire"
)

// Issue #9's rows "4096 sessions from one UDP socket" and "cookie reuse",
// against a listener on loopback with the attacker on a raw UDP socket and
// the wire encoders.

// hostileInitial is a client Initial with token and no frames, padded.
func hostileInitial(dst, src wire.ConnID, token []byte) []byte {
	return wire.PadInitial(wire.AppendInitialHeader(nil, wire.LongHeader{Version: wire.Version1, DstID: dst, SrcID: src}, token), 0)
}

// retryDance sends a tokenless Initial for client ID src and returns the
// Initial that carries the cookie of the Retry answering it.
func retryDance(t *testing.T, c *net.UDPConn, src wire.ConnID) []byte {
	t.Helper()
	dst := wire.ConnID{0xd0, src[1], src[2], src[3]}
	if _, err := c.Write(hostileInitial(dst, src, nil)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no Retry for client ID %x: %v", src, err)
		}
		h, _, err := wire.ParseLongHeader(buf[:n])
		if err != nil || h.Type != wire.TypeRetry || h.DstID != src {
			continue // a refusal for an earlier ID
		}
		tok, err := wire.ParseRetry(buf[:n], dst)
		if err != nil {
			t.Fatal(err)
		}
		return hostileInitial(h.SrcID, src, tok)
	}
}

// echoRTT measures the p50 round trip of n 64-byte echoes on st.
func echoRTT(t *testing.T, st net.Conn, n int) time.Duration {
	t.Helper()
	rtts := echoRTTs(t, st, n)
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

// echoRTTs returns the round trips of n 64-byte echoes on st.
func echoRTTs(t *testing.T, st net.Conn, n int) []time.Duration {
	msg, back := bytes.Repeat([]byte{'e'}, 64), make([]byte, 64)
	rtts := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := st.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(st, back); err != nil {
			t.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
	}
	return rtts
}

func hostileListener(t *testing.T, cfg *reliable.Config) *reliable.Listener {
	t.Helper()
	l, err := reliable.Listen("127.0.0.1:0", cfg)
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return l
}

// TestHostileSessionsFromOneSocket: one UDP socket walks through the Retry
// for 4096 client IDs. Before: 4096 sessions, and a legitimate Dial was
// refused (code 7). Now: the socket's address holds at most
// MaxHandshakesPerAddr half-open sessions (32 by default), every other Initial
// is refused, and a legitimate client from another address dials and keeps
// its echo round trip within rttBound of its unattacked value (3×, with the
// scheduling-noise floor the other hostile tests use).
//
// The unattacked value is the larger p50 of the echoes just before and just
// after the attack, so that a machine that gets busier or quieter meanwhile
// (CI runs other packages beside this one) moves both sides of the
// comparison; and the attack is repeated, up to attackRounds times, until one
// round keeps the bound (later rounds are all refusals: the address still
// holds its 32 half-open sessions). A listener the attack really slows fails
// every round.
func TestHostileSessionsFromOneSocket(t *testing.T) {
	l := hostileListener(t, &reliable.Config{HandshakeTimeout: 30 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := &reliable.Dialer{Config: &reliable.Config{PinnedSHA256: l.CertificateSHA256()}}
	defer d.Close()
	st, err := d.DialContext(ctx, "udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(60 * time.Second))

	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)}, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	const attempts, attackRounds = 4096, 3
	var rounds []string
	for round := range attackRounds {
		before := echoRTT(t, st, 300)
		stats0 := l.Stats()
		done, stop := make(chan time.Duration), make(chan struct{})
		go func() {
			// The legitimate session's round trips while the attack runs.
			var all []time.Duration
			for {
				all = append(all, echoRTTs(t, st, 50)...)
				select {
				case <-stop:
					slices.Sort(all)
					done <- all[len(all)/2]
					return
				default:
				}
			}
		}()
		start := time.Now()
		for i := range attempts {
			src := wire.ConnID{0xa0 + byte(round), byte(i >> 8), byte(i), 1}
			if _, err := c.Write(retryDance(t, c, src)); err != nil {
				t.Fatal(err)
			}
		}
		took := time.Since(start)
		close(stop)
		during := <-done
		after := echoRTT(t, st, 300)
		stats1 := l.Stats()
		refused := stats1.Counters[reliable.CounterDropsSessionLimit] - stats0.Counters[reliable.CounterDropsSessionLimit]
		held := l.SessionCount() - 1
		t.Logf("round %d: %d cookie'd Initials from one socket in %v: %d sessions held, %d refused; echo p50 %v before, %v during, %v after",
			round, attempts, took.Round(time.Millisecond), held, refused, before, during, after)
		if held > reliable.DefaultMaxHandshakesPerAddr {
			t.Fatalf("one socket holds %d sessions, MaxHandshakesPerAddr is %d", held, reliable.DefaultMaxHandshakesPerAddr)
		}
		wantRefused := uint64(attempts - reliable.DefaultMaxHandshakesPerAddr)
		if round > 0 {
			wantRefused = attempts // the address still holds its half-open sessions
		}
		if refused < wantRefused {
			t.Fatalf("round %d: %d of %d Initials refused, want at least %d", round, refused, attempts, wantRefused)
		}
		base := max(before, after)
		limit := rttBound(base)
		if during <= limit {
			break
		}
		rounds = append(rounds, fmt.Sprintf("round %d: %v during, unattacked %v (limit %v)", round, during, base, limit))
		if len(rounds) == attackRounds {
			t.Fatalf("echo p50 during the attack above its limit in every round: %s", strings.Join(rounds, "; "))
		}
	}
	// A new legitimate session from another address still gets in.
	pin := &reliable.Config{PinnedSHA256: l.CertificateSHA256()}
	s2, err := reliable.Dial(ctx, l.Addr().String(), pin)
	if err != nil {
		t.Fatalf("legitimate dial after the attack: %v", err)
	}
	s2.CloseWithError(0, "")
}

// TestHostileCookieReuse: before, a cookie replayed after its session closed
// created a new session within its 10 s life. Now a cookie opens one session:
// the replay is refused, and no session is created.
func TestHostileCookieReuse(t *testing.T) {
	l := hostileListener(t, &reliable.Config{HandshakeTimeout: 200 * time.Millisecond})
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	withCookie := retryDance(t, c, wire.ConnID{0xc0, 0, 0, 1})
	if _, err := c.Write(withCookie); err != nil {
		t.Fatal(err)
	}
	// The half-open session is created and times out (HandshakeTimeout
	// 200 ms). Nothing outside the process signals that: poll on a ticker.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(5 * time.Second)
	for l.Stats().Counters[reliable.CounterSessionsClosed] != 1 || l.SessionCount() != 0 {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("sessions %d, closed %d; want the cookie's session opened and timed out",
				l.SessionCount(), l.Stats().Counters[reliable.CounterSessionsClosed])
		}
	}
	if got := l.Stats().Counters[reliable.CounterSessionsOpened]; got != 1 {
		t.Fatalf("%d sessions opened by the cookie, want 1", got)
	}
	opened := l.Stats().Counters[reliable.CounterSessionsOpened]
	if _, err := c.Write(withCookie); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("replayed cookie: no answer: %v", err)
	}
	if !bytes.Contains(buf[:n], []byte("cookie already opened a session")) {
		t.Fatalf("replayed cookie answered with % x, want a refusal", buf[:n])
	}
	if got := l.Stats().Counters[reliable.CounterSessionsOpened]; got != opened {
		t.Fatalf("the replayed cookie opened a session (%d → %d)", opened, got)
	}
}
