package reliable

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/wire"
)

// floodKind is one category of hostile datagram and the drop counter it must
// raise.
type floodKind int

const (
	floodRandom         floodKind = iota // random bytes: some drop counter
	floodTruncated                       // header cut short: malformed
	floodUnknownID                       // short header, random connection ID: unknown session
	floodWrongSource                     // short header, the session's ID, another source: address mismatch
	floodShortInitial                    // Initial below 1200 bytes: malformed
	floodForgedCookie                    // Initial with a made-up cookie: bad cookie
	floodBadVersion                      // long header of an unknown version: version
	floodOversize                        // beyond MaxDatagramSize: malformed
	floodHandshakeToSrv                  // Retry (unknown session) or Handshake packet (address mismatch) to a listener's session
	floodPeerGarbage                     // from the real peer, the session's ID, an unknown frame: auth (does not open)
	floodKinds
)

var floodKindNames = [floodKinds]string{"random", "truncated", "unknown ID", "wrong source", "short Initial",
	"forged cookie", "bad version", "oversize", "handshake to server", "peer garbage"}

// floodDatagram appends a datagram of kind k to b.
func floodDatagram(b []byte, k floodKind, rng *rand.Rand, sid wire.ConnID, maxSize int) []byte {
	randBytes := func(b []byte, n int) []byte {
		for range n {
			b = append(b, byte(rng.Uint32()))
		}
		return b
	}
	var id wire.ConnID
	binary.LittleEndian.PutUint64(id[:], rng.Uint64())
	switch k {
	case floodRandom:
		return randBytes(b, rng.IntN(maxSize+1))
	case floodTruncated:
		if rng.IntN(2) == 0 {
			return randBytes(append(b, 0x40), rng.IntN(9)) // short header: 1..9 bytes
		}
		hdr := wire.LongHeader{Version: wire.Version1, DstID: id, SrcID: id}
		return append(b, hdr.Append(nil)[:1+rng.IntN(wire.LongHeaderLen-1)]...)
	case floodUnknownID:
		hdr := wire.ShortHeader{DstID: id, PacketNumber: rng.Uint64N(1 << 20)}
		return randBytes(hdr.Append(b), rng.IntN(200))
	case floodWrongSource:
		hdr := wire.ShortHeader{DstID: sid, PacketNumber: rng.Uint64N(1 << 20)}
		b = hdr.Append(b)
		f := wire.StreamFrame{StreamID: 0, Offset: rng.Uint64N(1 << 16), Data: []byte("spoofed"), HasLen: true}
		b, _ = f.Append(b)
		return b
	case floodShortInitial:
		in := testInitial(nil, wire.LongHeader{Version: wire.Version1, DstID: id, SrcID: id}, nil)
		return append(b, in[:wire.LongHeaderLen+rng.IntN(wire.MinInitialSize-wire.LongHeaderLen)]...)
	case floodForgedCookie:
		return testInitial(b, wire.LongHeader{Version: wire.Version1, DstID: id, SrcID: id}, randBytes(nil, cookieLen))
	case floodBadVersion:
		in := testInitial(b, wire.LongHeader{Version: wire.Version1, DstID: id, SrcID: id}, nil)
		binary.BigEndian.PutUint32(in[len(b)+1:], rng.Uint32()|0x80000000) // never Version1
		if rng.IntN(2) == 0 {
			in = in[:len(b)+wire.LongHeaderLen+rng.IntN(100)] // too short to be answered
		}
		return in
	case floodOversize:
		return randBytes(b, maxSize+1+rng.IntN(100))
	case floodHandshakeToSrv:
		hdr := wire.LongHeader{Version: wire.Version1, DstID: sid, SrcID: id}
		if rng.IntN(2) == 0 {
			return wire.AppendRetry(b, hdr, randBytes(nil, cookieLen), id)
		}
		return randBytes(wire.AppendHandshakeHeader(b, hdr, rng.Uint64N(1<<20)), 40) // its keys are gone: auth
	case floodPeerGarbage:
		hdr := wire.ShortHeader{DstID: sid, PacketNumber: rng.Uint64N(1 << 20)}
		return append(hdr.Append(b), 0x3f, 1, 2, 3) // 0x3f is no frame type
	}
	panic(fmt.Sprintf("flood kind %d", k))
}

// TestFloodMalformed sends 100,000 malformed and spoofed datagrams to a
// listener that holds an established session with an echo stream. Every one
// must be dropped and counted under its reason, and the session must go on
// echoing.
func TestFloodMalformed(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x666))

	cfg := &Config{Logger: slog.New(slog.DiscardHandler)}
	l := serveLoopback(t, cfg, func(c net.Conn) {
		go func() {
			io.Copy(c, c)
			c.Close()
		}()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Dial(ctx, l.Addr().String(), pin(l, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer s.CloseWithError(0, "test done")
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(60 * time.Second))
	echo := func(what string, size int) {
		t.Helper()
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		go st.Write(msg)
		got := make([]byte, size)
		if _, err := io.ReadFull(st, got); err != nil {
			t.Fatalf("%s: echo of %d bytes: %v (session: %v)", what, size, err, s.Err())
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("%s: echo of %d bytes came back different", what, size)
		}
	}
	echo("before the flood", 64<<10)

	s.mu.Lock()
	sid := s.remoteID // the listener's connection ID for this session
	s.mu.Unlock()
	target := l.e.pc.LocalAddr()
	attacker, err := udpio.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	peer := s.ep.pc // the session's own socket: the right source address

	drops := func() (Stats, uint64) {
		st := l.Stats()
		return st, st.Counters[CounterDropsMalformed] + st.Counters[CounterDropsUnknownSession] + st.Counters[CounterDropsAddressMismatch] + st.Counters[CounterDropsBadCookie] +
			st.Counters[CounterDropsVersion] + st.Counters[CounterDropsSessionLimit] + st.Counters[CounterDropsAuth]
	}
	base, baseDrops := drops()
	var sent [floodKinds]int
	const batch = 256
	bufs := make([][]byte, 0, batch)
	fromPeer := make([][]byte, 0, batch)
	addrs := make([]netip.AddrPort, batch)
	for i := range addrs {
		addrs[i] = target
	}
	maxSize := l.e.cfg.MaxDatagramSize
	write := func(pc *udpio.Conn, bufs [][]byte) {
		for len(bufs) > 0 {
			n, err := pc.WriteBatch(bufs, addrs[:len(bufs)])
			if err != nil && n == 0 {
				t.Fatalf("flood send: %v", err)
			}
			bufs = bufs[n:]
		}
	}
	start := time.Now()
	for done := 0; done < total; {
		bufs, fromPeer = bufs[:0], fromPeer[:0]
		for n := min(batch, total-done); n > 0; n-- {
			k := floodKind(rng.IntN(int(floodKinds)))
			sent[k]++
			d := floodDatagram(nil, k, rng, sid, maxSize)
			if k == floodPeerGarbage {
				fromPeer = append(fromPeer, d)
			} else {
				bufs = append(bufs, d)
			}
		}
		write(attacker, bufs)
		if pu, ok := peer.(*udpio.Conn); ok {
			write(pu, fromPeer)
		} else {
			t.Fatalf("session socket is %T, want *udpio.Conn", peer)
		}
		done += len(bufs) + len(fromPeer)
		// Let the listener catch up before the next batch, so that the socket
		// buffer never overflows: each datagram raises exactly one counter.
		waitFor(t, 20*time.Second, func() bool { _, d := drops(); return d-baseDrops >= uint64(done) },
			func() string {
				_, d := drops()
				return fmt.Sprintf("%d of %d datagrams counted as drops", d-baseDrops, done)
			})
	}
	took := time.Since(start)
	end, endDrops := drops()
	t.Logf("%d datagrams in %v (%.0f/s); sent by kind %v", total, took, float64(total)/took.Seconds(), sent)
	t.Logf("drops: malformed %d, unknown session %d, address mismatch %d, bad cookie %d, version %d, session limit %d",
		end.Counters[CounterDropsMalformed]-base.Counters[CounterDropsMalformed], end.Counters[CounterDropsUnknownSession]-base.Counters[CounterDropsUnknownSession],
		end.Counters[CounterDropsAddressMismatch]-base.Counters[CounterDropsAddressMismatch], end.Counters[CounterDropsBadCookie]-base.Counters[CounterDropsBadCookie],
		end.Counters[CounterDropsVersion]-base.Counters[CounterDropsVersion], end.Counters[CounterDropsSessionLimit]-base.Counters[CounterDropsSessionLimit])

	if got := endDrops - baseDrops; got != uint64(total) {
		t.Errorf("drop counters rose by %d for %d hostile datagrams", got, total)
	}
	for _, c := range []struct {
		name     string
		got      uint64
		min, max int
	}{
		{"DropsMalformed", end.Counters[CounterDropsMalformed] - base.Counters[CounterDropsMalformed],
			sent[floodTruncated] + sent[floodShortInitial] + sent[floodOversize], total},
		{"DropsUnknownSession", end.Counters[CounterDropsUnknownSession] - base.Counters[CounterDropsUnknownSession],
			sent[floodUnknownID], total},
		{"DropsAuth", end.Counters[CounterDropsAuth] - base.Counters[CounterDropsAuth], sent[floodPeerGarbage], total},
		{"DropsAddressMismatch", end.Counters[CounterDropsAddressMismatch] - base.Counters[CounterDropsAddressMismatch], sent[floodWrongSource], sent[floodWrongSource] + sent[floodHandshakeToSrv]},
		{"DropsBadCookie", end.Counters[CounterDropsBadCookie] - base.Counters[CounterDropsBadCookie], sent[floodForgedCookie], sent[floodForgedCookie]},
		{"DropsVersion", end.Counters[CounterDropsVersion] - base.Counters[CounterDropsVersion], sent[floodBadVersion], total},
		{"DropsSessionLimit", end.Counters[CounterDropsSessionLimit] - base.Counters[CounterDropsSessionLimit], 0, 0},
	} {
		if c.got < uint64(c.min) || c.got > uint64(c.max) || (c.max > 0 && c.got == 0) {
			t.Errorf("%s rose by %d, want %d..%d (and > 0 unless 0 expected)", c.name, c.got, c.min, c.max)
		}
	}
	if n := end.Counters[CounterSessionsOpened] - base.Counters[CounterSessionsOpened]; n != 0 {
		t.Errorf("the flood opened %d sessions", n)
	}
	if n := l.SessionCount(); n != 1 {
		t.Errorf("listener holds %d sessions after the flood, want 1", n)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("session ended during the flood: %v", err)
	}
	echo("after the flood", 64<<10)
}

// waitFor polls cond on a ticker until it holds, failing with what() after d.
// It is used only where no event orders the two sides (datagrams from
// different sockets).
func waitFor(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return
			}
		case <-deadline.C:
			t.Fatalf("after %v: %s", d, what())
		}
	}
}
