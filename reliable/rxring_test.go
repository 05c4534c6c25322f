package reliable

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
	"github.com/raptormq/raptor/wire"
)

// TestSimOpenIntoRing: bulk data that a slow reader is behind on is
// decrypted straight into the stream's receive ring (rxring.go,
// stream_bytes_opened_in_ring) and arrives intact and in order, over a
// clean link, a lossy, reordering and duplicating one (data beyond gaps
// opened into the ring, guesses that miss: retransmissions, duplicates),
// and one that flips a
// bit in some datagrams (packets that fail authentication after the AEAD
// wrote into the ring). With InsecurePlaintext nothing is decrypted, so
// nothing is opened into the ring.
func TestSimOpenIntoRing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		link      simnet.LinkConfig
		plaintext bool
	}{
		{"clean", simnet.LinkConfig{Delay: time.Millisecond, Bandwidth: 50 << 20}, false},
		{"lossy", simnet.LinkConfig{Delay: time.Millisecond, Bandwidth: 50 << 20, Loss: 0.03, Reorder: 0.1, ReorderDelay: time.Millisecond, Duplicate: 0.05}, false},
		{"corrupt", simnet.LinkConfig{Delay: time.Millisecond, Bandwidth: 50 << 20, Corrupt: 0.03}, false},
		{"plaintext", simnet.LinkConfig{Delay: time.Millisecond, Bandwidth: 50 << 20, Loss: 0.03}, true},
	} {
		for seed := int64(1); seed <= 2; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", tc.name, seed), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					nw, l, s := simPair(t, seed, tc.link, &Config{InsecurePlaintext: tc.plaintext})
					defer nw.Close()
					w, r := simStreams(t, l, s)
					want := make([]byte, 3<<20)
					for i := range want {
						want[i] = byte(i*131 + i>>12)
					}
					werr := make(chan error, 1)
					go func() { werr <- writeChunks(w, want, 20000) }()
					got, err := slowRead(r, 8<<10)
					if err != nil {
						t.Fatal(err)
					}
					if err := <-werr; err != nil {
						t.Fatal(err)
					}
					sameBytes(t, got, want)
					c := l.Stats().Counters
					inRing, recvd := c[CounterStreamBytesOpenedInRing], c[CounterStreamBytesReceived]
					rs := r.s
					rs.mu.Lock()
					hits, misses := rs.openedInRing, rs.rxMisses
					rs.mu.Unlock()
					t.Logf("%d of %d bytes opened into the ring (%d packets, %d guesses missed); auth drops %d, retransmits %d",
						inRing, recvd, hits, misses, c[CounterDropsAuth], s.Stats().Counters[CounterRetransmits])
					switch {
					case tc.plaintext:
						if inRing != 0 || hits != 0 {
							t.Fatalf("plaintext: %d bytes opened into the ring", inRing)
						}
					case tc.name == "clean" && inRing < recvd/8:
						// Guesses miss when the sender's data packets alternate
						// between carrying an ACK frame in front and not.
						t.Fatalf("%d of %d bytes opened into the ring: want an eighth at least from a reader this far behind", inRing, recvd)
					case hits == 0:
						t.Fatal("no packet opened into the ring")
					}
					if tc.name == "corrupt" && c[CounterDropsAuth] == 0 {
						t.Fatal("no datagram failed authentication: the test did not corrupt any")
					}
				})
			})
		}
	}
}

// writeChunks writes data to w in writes of chunk bytes, then closes w's
// write side.
func writeChunks(w *Stream, data []byte, chunk int) error {
	for rest := data; len(rest) > 0; {
		n := min(len(rest), chunk)
		if _, err := w.Write(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return w.CloseWrite()
}

// slowRead reads r to EOF in reads of size bytes, a millisecond of virtual
// time apart (a reader slower than the link, so it is behind), and returns
// the bytes.
func slowRead(r *Stream, size int) ([]byte, error) {
	var got []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, fmt.Errorf("read after %d bytes: %w", len(got), err)
		}
		time.Sleep(time.Millisecond) // virtual time (synctest): the reader's own work
	}
}

// TestSimOpenIntoRingStreams: packets of two streams in turn make the guess
// (the last packet's stream) miss often; both streams' bytes arrive intact.
func TestSimOpenIntoRingStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		link := simnet.LinkConfig{Delay: time.Millisecond, Bandwidth: 50 << 20, Loss: 0.02}
		nw, l, s := simPair(t, 3, link, nil)
		defer nw.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		var wants, gots [2][]byte
		var rs *Session
		for i := 0; i < 2; i++ {
			w, r := simStreams(t, l, s)
			rs = r.s
			want := make([]byte, 1<<20)
			for j := range want {
				want[j] = byte(j*7 + i*91 + j>>10)
			}
			wants[i] = want
			wg.Add(2)
			go func() {
				defer wg.Done()
				errs <- writeChunks(w, want, 3000)
			}()
			go func() {
				defer wg.Done()
				var err error
				gots[i], err = slowRead(r, 4<<10)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range wants {
			sameBytes(t, gots[i], wants[i])
		}
		rs.mu.Lock()
		hits, misses := rs.openedInRing, rs.rxMisses
		rs.mu.Unlock()
		t.Logf("%d packets opened into a ring, %d guesses missed", hits, misses)
		if hits == 0 {
			t.Fatal("no packet opened into a ring")
		}
	})
}

// TestOpenIntoTarget: a packet opened through an rxTarget has its plaintext
// at ring[pos-k : pos+n], the ring bytes in front of the data saved, and
// undo puts them back; one that fails authentication (a flipped bit) leaves
// the ring as it was outside the data's place (which nothing holds); a
// target without room opens in place.
func TestOpenIntoTarget(t *testing.T) {
	secretA, secretB := bytes.Repeat([]byte{0xaa}, 32), bytes.Repeat([]byte{0xbb}, 32)
	for _, suite := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256} {
		tx, err := newAppKeys(suite, secretA, secretB, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := newAppKeys(suite, secretB, secretA, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 3000)
		for i := range data {
			data[i] = byte(i*13 + 5)
		}
		seal := func(pn uint64) ([]byte, int) {
			h := wire.ShortHeader{DstID: wire.ConnID{7}, PacketNumber: pn}
			b := h.Append(make([]byte, 0, 4096))
			hl := len(b)
			f := wire.StreamFrame{StreamID: 4, Offset: 1 << 20, HasLen: true, Data: data}
			b, _ = f.Append(b)
			return bytes.Clone(tx.sealShort(b, hl, pn)), f.HeaderLen()
		}
		held := make([]byte, 8192)
		for i := range held {
			held[i] = byte(i * 3)
		}
		const pos = 1000
		for pn := uint64(0); pn < 3; pn++ {
			pkt, k := seal(pn)
			ring := bytes.Clone(held)
			tg := &rxTarget{ring: ring, pos: pos, k: k, room: uint64(len(ring) - pos)}
			switch pn {
			case 0: // opens into the ring
				_, hl, p, err := rx.openShortInto(pkt, tg)
				if err != nil {
					t.Fatal(err)
				}
				if &p[0] != &ring[pos-k] || len(p) != k+len(data) || hl+len(p)+aeadTagLen != len(pkt) {
					t.Fatalf("%#x: plaintext not at the target", suite)
				}
				if !bytes.Equal(ring[pos:pos+len(data)], data) {
					t.Fatalf("%#x: the data is not where it belongs in the ring", suite)
				}
				tg.undo()
				if !bytes.Equal(ring[:pos], held[:pos]) || !bytes.Equal(ring[pos+len(data):], held[pos+len(data):]) {
					t.Fatalf("%#x: ring bytes outside the data changed", suite)
				}
			case 1: // a bit flipped: fails, the ring as it was but where the data was to go (held by nothing)
				pkt[len(pkt)-20] ^= 0x10
				if _, _, _, err := rx.openShortInto(pkt, tg); err == nil {
					t.Fatalf("%#x: a modified packet opened", suite)
				}
				if !bytes.Equal(ring[:pos], held[:pos]) || !bytes.Equal(ring[pos+len(data):], held[pos+len(data):]) {
					t.Fatalf("%#x: a packet that failed to open changed ring bytes outside its data's place", suite)
				}
			case 2: // no room: in place
				tg.room = uint64(len(data) - 1)
				_, hl, p, err := rx.openShortInto(pkt, tg)
				if err != nil {
					t.Fatal(err)
				}
				if &p[0] != &pkt[hl] || !bytes.Equal(ring, held) {
					t.Fatalf("%#x: a target without room was used", suite)
				}
			}
		}
	}
}
