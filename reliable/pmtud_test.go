package reliable

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
	"github.com/raptormq/raptor/wire"
)

// runSearch drives d against a path that carries datagrams up to path bytes
// (every probe above is lost, every one at or below acknowledged) until the
// search rests; it returns the probes sent.
func runSearch(t *testing.T, d *sizeDiscovery, path int, now time.Time, pn *uint64) int {
	t.Helper()
	probes := 0
	for {
		size, ok := d.nextProbe(now, 0)
		if !ok {
			return probes
		}
		if size <= d.cur || size > d.ceiling {
			t.Fatalf("probe of %d bytes with %d confirmed and ceiling %d", size, d.cur, d.ceiling)
		}
		probes++
		if probes > 100 {
			t.Fatalf("search of path %d still going after 100 probes (cur %d, hi %d)", path, d.cur, d.hi)
		}
		*pn++
		d.onProbeSent(*pn, size, now)
		p := &sentPacket{pn: *pn, size: size - d.overhead, ctl: ctlPing | ctlProbe}
		if size <= path {
			d.onAcked(p)
		} else if d.onLost(p) {
			t.Fatalf("a lost probe of %d bytes made a black hole", size)
		}
	}
}

// TestSizeDiscoverySearch: the search ends within probeResolution of what the
// path carries (or at the ceiling), never above it, in a bounded number of
// probes, and rests until the raise timer.
func TestSizeDiscoverySearch(t *testing.T) {
	for _, tc := range []struct {
		name                string
		base, ceiling, path int
		maxProbes           int
	}{
		{"loopback", 1452, 16384, 65535, 1},
		{"jumbo", 1452, 16384, 8972, 3*8 + 2},
		{"ethernet-ipv4", 1452, 16384, 1472, 3*9 + 1},
		{"base-only", 1452, 16384, 1452, 3 * 9},
		{"ceiling-at-base", 1452, 1452, 65535, 0},
		{"small-ceiling", 1200, 1300, 65535, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d sizeDiscovery
			d.init(tc.base, tc.ceiling, aeadTagLen, time.Minute)
			now := time.Unix(1000, 0)
			var pn uint64
			probes := runSearch(t, &d, tc.path, now, &pn)
			want := min(tc.path, tc.ceiling)
			if d.cur > want || (d.cur != want && want-d.cur > probeResolution) {
				t.Errorf("search ended at %d; path carries %d, ceiling %d: want within %d below %d", d.cur, tc.path, tc.ceiling, probeResolution, want)
			}
			if probes > tc.maxProbes {
				t.Errorf("search took %d probes, want at most %d", probes, tc.maxProbes)
			}
			if d.cur < tc.ceiling {
				if got := d.deadline(); !got.Equal(now.Add(time.Minute)) {
					t.Errorf("raise timer at %v, want %v", got, now.Add(time.Minute))
				}
				d.onTimer(now.Add(time.Minute - time.Nanosecond))
				if _, ok := d.nextProbe(now, 0); ok {
					t.Errorf("probe before the raise timer")
				}
				// The path grew: after the raise timer the search finds it.
				d.onTimer(now.Add(time.Minute))
				runSearch(t, &d, 65535, now.Add(time.Minute), &pn)
				if d.cur != tc.ceiling {
					t.Errorf("after the raise timer on a wider path: %d, want the ceiling %d", d.cur, tc.ceiling)
				}
			} else if !d.deadline().IsZero() {
				t.Errorf("at the ceiling, a raise timer is armed for %v", d.deadline())
			}
		})
	}
}

// TestSizeDiscoveryBlackHole: losses of large packets sent after the last
// large one acknowledged send the size back to the base; losses of packets
// older than an acknowledged large one (congestion, reordering) do not.
func TestSizeDiscoveryBlackHole(t *testing.T) {
	var d sizeDiscovery
	d.init(1452, 16384, 0, time.Minute)
	var pn uint64
	runSearch(t, &d, 65535, time.Unix(0, 0), &pn)
	if d.cur != 16384 {
		t.Fatalf("search ended at %d, want 16384", d.cur)
	}
	big := func(n uint64) *sentPacket { return &sentPacket{pn: n, size: 16000} }
	// Congestion: packets 10..20 lost, 21 acknowledged first.
	d.onAcked(big(21))
	for n := uint64(10); n <= 20; n++ {
		if d.onLost(big(n)) {
			t.Fatalf("loss of packet %d, older than acknowledged 21, made a black hole", n)
		}
	}
	// Small packets lost after it count for nothing either.
	for n := uint64(22); n < 30; n++ {
		if d.onLost(&sentPacket{pn: n, size: 1000}) {
			t.Fatalf("loss of a small packet %d made a black hole", n)
		}
	}
	for i, n := range []uint64{30, 31, 32} {
		hole := d.onLost(big(n))
		if hole != (i == blackHoleLosses-1) {
			t.Fatalf("loss %d (packet %d): black hole %v", i+1, n, hole)
		}
	}
	if d.cur != 1452 || d.hi != 16384 {
		t.Fatalf("after the black hole: size %d, smallest failed %d; want 1452, 16384", d.cur, d.hi)
	}
	// The search goes on below the size that failed; a stale probe of the
	// earlier search changes nothing.
	if d.onAcked(&sentPacket{pn: 5, ctl: ctlProbe, size: 16384}) {
		t.Fatalf("a stale probe's acknowledgement raised the size")
	}
	runSearch(t, &d, 9000, time.Unix(1, 0), &pn)
	if d.cur > 9000 || 9000-d.cur > probeResolution {
		t.Fatalf("search after the black hole ended at %d, want within %d below 9000", d.cur, probeResolution)
	}
}

// simTransfer writes n pseudo-random bytes from w and checks that r reads them.
func simTransfer(t *testing.T, w, r *Stream, n int, seed uint64) {
	t.Helper()
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	werr := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		werr <- err
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write %d bytes: %v", n, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%d bytes arrived changed", n)
	}
}

// simStreams opens a stream from s and accepts it on l.
func simStreams(t *testing.T, l *Listener, s *Session) (*Stream, *Stream) {
	t.Helper()
	w, err := s.OpenStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	r, err := l.AcceptStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err != nil {
		t.Fatal(err)
	}
	return w, r
}

// TestSimSizeDiscovery: over a simulated path that drops datagrams above its
// MTU, a bulk transfer's datagram size grows to what the path carries (the
// ceiling when the path carries more), lost probes are neither retransmitted
// nor a congestion signal, and with discovery off the size stays at the base.
// On a path that carries everything exactly one probe is lost: the first,
// which the receiver's base-size buffers truncate before they grow.
func TestSimSizeDiscovery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mtu    int
		cfg    Config
		lo, hi int    // DatagramSize range expected
		lostLo uint64 // probes lost, at least
		lostHi uint64 // ... at most
	}{
		{"loopback", 0, Config{}, DefaultMaxProbedDatagramSize, DefaultMaxProbedDatagramSize, 1, 1},
		{"jumbo", 9000, Config{}, 9000 - probeResolution, 9000, 2, 1 << 20},
		{"base-path", DefaultMaxDatagramSize, Config{}, DefaultMaxDatagramSize, DefaultMaxDatagramSize, 2, 1 << 20},
		{"ceiling-32k", 0, Config{MaxProbedDatagramSize: 32768}, 32768, 32768, 1, 1},
		{"off", 0, Config{MaxProbedDatagramSize: -1}, DefaultMaxDatagramSize, DefaultMaxDatagramSize, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := tc.cfg
				nw, l, s := simPair(t, 5, simnet.LinkConfig{Delay: time.Millisecond, MTU: tc.mtu}, &cfg)
				defer nw.Close()
				w, r := simStreams(t, l, s)
				// Transfer until the search rests (at most 32 MiB).
				for i := 0; i < 32 && (i < 2 || s.searchingForTest()); i++ {
					simTransfer(t, w, r, 1<<20, uint64(i))
				}
				st := s.Stats()
				size := st.DatagramSize
				t.Logf("datagram size %d; probes sent %d acked %d lost %d; retransmits %d; path drops (mtu) %d",
					size, st.Get(CounterProbesSent), st.Get(CounterProbesAcked), st.Get(CounterProbesLost), st.Get(CounterRetransmits), nw.Stats().Drops(simnet.DropMTU))
				if size < tc.lo || size > tc.hi {
					t.Errorf("datagram size %d, want %d..%d", size, tc.lo, tc.hi)
				}
				// The sender's endpoint receives only ACKs: its receive
				// buffers stay at the base size. The receiver's grew to the
				// announced size with the first probe, unless none came.
				if got := s.ep.rsize; got != DefaultMaxDatagramSize {
					t.Errorf("sender's receive buffers hold %d bytes, want the base %d", got, DefaultMaxDatagramSize)
				}
				wantR := DefaultMaxDatagramSize
				if st.Get(CounterProbesAcked) > 0 {
					wantR = s.ep.cfg.MaxProbedDatagramSize
				}
				if got := l.e.rsize; got != wantR {
					t.Errorf("receiver's receive buffers hold %d bytes, want %d", got, wantR)
				}
				if lost := st.Get(CounterProbesLost); lost < tc.lostLo || lost > tc.lostHi {
					t.Errorf("probes lost %d, want %d..%d", lost, tc.lostLo, tc.lostHi)
				}
				if tc.cfg.MaxProbedDatagramSize < 0 && st.Get(CounterProbesSent) != 0 {
					t.Errorf("discovery off, yet %d probes sent", st.Get(CounterProbesSent))
				}
				if n := st.Get(CounterRetransmits); n != 0 {
					t.Errorf("%d retransmissions on a lossless path (lost probes are not resent)", n)
				}
				if n := st.Get(CounterBlackHoles); n != 0 {
					t.Errorf("%d black holes on a steady path", n)
				}
				if s.searchingForTest() {
					t.Errorf("still searching after 32 MiB")
				}
				if drops := nw.Stats().Drops(simnet.DropMTU); drops > st.Get(CounterProbesSent)-st.Get(CounterProbesAcked) {
					t.Errorf("the path dropped %d datagrams above its MTU, of %d probes sent, %d acknowledged: only probes may exceed it", drops, st.Get(CounterProbesSent), st.Get(CounterProbesAcked))
				}
			})
		})
	}
}

// TestSimSizeBlackHole: the path narrows in the middle of a transfer (a
// black hole for the confirmed size): the transfer completes, the session
// falls back to the base size and finds the narrower path's size; when the
// path widens again, the raise timer finds the ceiling again.
func TestSimSizeBlackHole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		link := simnet.LinkConfig{Delay: time.Millisecond}
		cfg := &Config{probeRaiseAfter: 2 * time.Second}
		nw, l, s := simPair(t, 9, link, cfg)
		defer nw.Close()
		w, r := simStreams(t, l, s)
		simTransfer(t, w, r, 1<<20, 1)
		if got := s.Stats().DatagramSize; got != DefaultMaxProbedDatagramSize {
			t.Fatalf("before the black hole: datagram size %d, want %d", got, DefaultMaxProbedDatagramSize)
		}
		narrow := link
		narrow.MTU = 4000
		if err := nw.SetDefaultLink(narrow); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 32 && (i < 2 || s.searchingForTest()); i++ {
			simTransfer(t, w, r, 1<<20, uint64(2+i))
		}
		st := s.Stats()
		t.Logf("narrowed: size %d, black holes %d, probes sent %d lost %d, RTOs %d", st.DatagramSize, st.Get(CounterBlackHoles), st.Get(CounterProbesSent), st.Get(CounterProbesLost), st.Get(CounterRTOs))
		if st.Get(CounterBlackHoles) == 0 {
			t.Fatalf("no black hole detected after the path narrowed to 4000 bytes")
		}
		if st.DatagramSize > 4000 || 4000-st.DatagramSize > probeResolution {
			t.Fatalf("after the black hole: datagram size %d, want within %d below 4000", st.DatagramSize, probeResolution)
		}
		if err := nw.SetDefaultLink(link); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // virtual: past the raise timer
		for i := 0; i < 32 && (i < 1 || s.searchingForTest()); i++ {
			simTransfer(t, w, r, 1<<20, uint64(40+i))
		}
		if got := s.Stats().DatagramSize; got != DefaultMaxProbedDatagramSize {
			t.Fatalf("after the path widened and the raise timer: datagram size %d, want %d", got, DefaultMaxProbedDatagramSize)
		}
		if err := s.Err(); err != nil {
			t.Fatalf("session: %v", err)
		}
	})
}

// TestSimSizeDiscoveryPeerLimit: the peer's max_datagram_size caps the
// search (an old peer that announces its base size is never sent more).
func TestSimSizeDiscoveryPeerLimit(t *testing.T) {
	for _, srv := range []int{-1, 4096} {
		t.Run(fmt.Sprint(srv), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw, err := simnet.New(simnet.Config{Seed: 1, Link: simnet.LinkConfig{Delay: time.Millisecond}, RecvQueue: 4096})
				if err != nil {
					t.Fatal(err)
				}
				defer nw.Close()
				sc, _ := nw.Listen(simServer)
				cc, _ := nw.Listen(simClient)
				scfg := &Config{MaxProbedDatagramSize: srv}
				l, err := ListenPacket(sc, scfg)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				s, err := DialPacket(ctx, cc, simServer, pin(l, nil))
				if err != nil {
					t.Fatal(err)
				}
				w, r := simStreams(t, l, s)
				simTransfer(t, w, r, 1<<20, 3)
				want := max(srv, DefaultMaxDatagramSize)
				if got := s.Stats().DatagramSize; got != want {
					t.Errorf("server receives up to %d: client datagram size %d, want %d", want, got, want)
				}
				s.CloseWithError(0, "done")
				<-s.Done()
			})
		})
	}
}

// searchingForTest reports whether the datagram size search goes on (probes
// due or in flight).
func (s *Session) searchingForTest() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pmtu.due
}

// TestStreamDataRoom: the data a STREAM frame can carry in a given space is
// the most whose frame (header, length varint, data) still fits, across the
// varint length boundaries that datagrams above 16 KiB cross.
func TestStreamDataRoom(t *testing.T) {
	for _, off := range []uint64{0, 1 << 20, 1 << 40} {
		f := wire.StreamFrame{StreamID: 5, Offset: off, HasLen: true}
		for space := 0; space <= 70000; space++ {
			if space > 200 && space%97 != 0 && (space < 16370 || space > 16400) {
				continue
			}
			room := streamDataRoom(space, &f)
			fits := func(d int) bool {
				if d < 0 {
					return false
				}
				g := f
				g.Data = make([]byte, d)
				return g.Length() <= space
			}
			if room >= 0 && !fits(room) {
				t.Fatalf("offset %d, space %d: room %d does not fit", off, space, room)
			}
			if fits(room + 1) {
				t.Fatalf("offset %d, space %d: room %d, but %d fits", off, space, room, room+1)
			}
		}
	}
}
