package reliable

import (
	"context"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
	"github.com/raptormq/raptor/wire"
)

// TestSimLowRateRequestsSendInline follows the pattern of a Kafka client at
// a low offered rate over one session: a producer stream (request, reply)
// and a consumer stream (the broker pushes a fetch reply for each record,
// the consumer sends its next fetch request), a record every 500 µs of
// virtual time. Each side nearly always has a small packet of the other
// stream not yet acknowledged when it writes. The writes must still leave
// from the writing goroutine (no hand-off to the run loop, which on a
// loaded machine costs a scheduling delay per message), and the ACKs must
// ride on the replies instead of costing datagrams of their own.
func TestSimLowRateRequestsSendInline(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
	}{
		{"loopback-like 20µs", 20 * time.Microsecond},
		{"LAN 200µs", 200 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { lowRateExchange(t, tc.delay) })
		})
	}
}

func lowRateExchange(t *testing.T, delay time.Duration) {
	const (
		rounds              = 200
		reqSize, replySize  = 120, 60
		fetchSize, pollSize = 180, 40
	)
	nw, l, s := simPair(t, 7, simnet.LinkConfig{Delay: delay}, nil)
	defer nw.Close()
	ctx := context.Background()
	srvSess := make(chan *Session, 1)
	srvErr := make(chan error, 2)
	go func() {
		var prod, fetch *Stream
		for prod == nil || fetch == nil {
			st, err := l.AcceptStream(ctx)
			if err != nil {
				srvErr <- fmt.Errorf("accept: %w", err)
				return
			}
			var kind [1]byte
			if _, err := io.ReadFull(st, kind[:]); err != nil {
				srvErr <- fmt.Errorf("stream kind: %w", err)
				return
			}
			if kind[0] == 'p' {
				prod = st
			} else {
				fetch = st
			}
		}
		srvSess <- prod.Session()
		go func() { // the consumer's fetch requests
			buf := make([]byte, pollSize)
			for {
				if _, err := io.ReadFull(fetch, buf); err != nil {
					return
				}
			}
		}()
		req := make([]byte, reqSize)
		for i := 0; i < rounds; i++ {
			if _, err := io.ReadFull(prod, req); err != nil {
				srvErr <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			if _, err := prod.Write(make([]byte, replySize)); err != nil {
				srvErr <- fmt.Errorf("reply %d: %w", i, err)
				return
			}
			if _, err := fetch.Write(make([]byte, fetchSize)); err != nil {
				srvErr <- fmt.Errorf("fetch reply %d: %w", i, err)
				return
			}
		}
		srvErr <- nil
	}()
	open := func(kind byte) *Stream {
		st, err := s.OpenStream(ctx)
		if err != nil {
			t.Fatalf("open stream %c: %v", kind, err)
		}
		if _, err := st.Write([]byte{kind}); err != nil {
			t.Fatalf("stream %c: first write: %v", kind, err)
		}
		return st
	}
	prod, fetch := open('p'), open('f')
	consErr := make(chan error, 1)
	go func() {
		buf := make([]byte, fetchSize)
		for i := 0; i < rounds; i++ {
			if _, err := io.ReadFull(fetch, buf); err != nil {
				consErr <- fmt.Errorf("fetch reply %d: %w", i, err)
				return
			}
			if _, err := fetch.Write(make([]byte, pollSize)); err != nil {
				consErr <- fmt.Errorf("fetch request %d: %w", i, err)
				return
			}
		}
		consErr <- nil
	}()
	ss := <-srvSess
	synctest.Wait() // the stream openings are done and acknowledged
	counts := func(x *Session) (inline, ackOnly uint64) {
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.inlineSent, x.ackOnlySent
	}
	cInline0, cAck0 := counts(s)
	sInline0, sAck0 := counts(ss)
	reply := make([]byte, replySize)
	for i := 0; i < rounds; i++ {
		if _, err := prod.Write(make([]byte, reqSize)); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := io.ReadFull(prod, reply); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		time.Sleep(500 * time.Microsecond) // the offered rate, in virtual time
	}
	if err := <-consErr; err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	cInline, cAck := counts(s)
	sInline, sAck := counts(ss)
	cInline, cAck, sInline, sAck = cInline-cInline0, cAck-cAck0, sInline-sInline0, sAck-sAck0
	// Each side writes two small messages a round; nearly all must have
	// left inline (a few may meet the other stream's write or a timer's
	// send in progress).
	for _, side := range []struct {
		name    string
		inline  uint64
		ackOnly uint64
	}{{"client", cInline, cAck}, {"server", sInline, sAck}} {
		if min := uint64(2 * rounds * 9 / 10); side.inline < min {
			t.Errorf("%s: %d of %d writes sent inline, want at least %d", side.name, side.inline, 2*rounds, min)
		}
		if max := uint64(rounds / 10); side.ackOnly > max {
			t.Errorf("%s: %d ACK-only datagrams in %d rounds, want at most %d (ACKs ride on replies)", side.name, side.ackOnly, rounds, max)
		}
	}
	t.Logf("delay %v: inline client %d server %d of %d each; ACK-only client %d server %d", delay, cInline, sInline, 2*rounds, cAck, sAck)
	s.CloseWithError(0, "done")
	l.Close()
}

// TestReceivedTrackerAckSize: two small ack-eliciting packets wait for a
// packet to ride on (up to max_ack_delay); two that carry a base-size
// datagram between them, or ackEveryPackets small ones, are acknowledged at
// once; one packet alone, however large, waits.
func TestReceivedTrackerAckSize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	const full = 1452
	for _, tc := range []struct {
		name   string
		sizes  []int // ack-eliciting packets 0, 1, ...
		ackNow bool
	}{
		{"one small", []int{100}, false},
		{"two small", []int{100, 200}, false},
		{"two just under a datagram", []int{700, full - 701}, false},
		{"two of a datagram", []int{700, full - 700}, true},
		{"one full", []int{full}, false},
		{"one huge", []int{16 << 10}, false},
		{"two nearly full", []int{full - 40, full - 40}, true},
		{"small then full", []int{100, full}, true},
		{"seven small", []int{90, 90, 90, 90, 90, 90, 90}, false},
		{"eight small", []int{90, 90, 90, 90, 90, 90, 90, 90}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := receivedTracker{maxAckDelay: ms, ackBytes: full}
			for i, n := range tc.sizes {
				rt.onPacket(uint64(i), true, n, t0)
			}
			if rt.ackNow != tc.ackNow || rt.wantsToSend() != tc.ackNow {
				t.Errorf("ackNow %v, want %v", rt.ackNow, tc.ackNow)
			}
			if want := t0.Add(ms); rt.deadline() != want {
				t.Errorf("deadline %v, want %v", rt.deadline(), want)
			}
			var f wire.AckFrame
			rt.fillAck(&f, t0)
			rt.onAckSent()
			// The count starts again after an ACK went out.
			rt.onPacket(uint64(len(tc.sizes)), true, 100, t0)
			if rt.ackNow {
				t.Errorf("after the ACK: one small packet made an ACK due at once")
			}
		})
	}
}
