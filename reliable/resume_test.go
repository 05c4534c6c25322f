package reliable

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

// echoStreams serves every accepted stream of l by echoing it until l closes.
func echoStreams(l *Listener) {
	for {
		st, err := l.AcceptStream(context.Background())
		if err != nil {
			return
		}
		go func() {
			io.Copy(st, st)
			st.CloseWrite()
		}()
	}
}

// roundTrip echoes one message on a new stream of s: after it, the server's
// session ticket (sent with its first short-header packet) has arrived.
func roundTrip(ctx context.Context, s *Session) error {
	st, err := s.OpenStream(ctx)
	if err != nil {
		return err
	}
	if _, err := st.Write([]byte("ping")); err != nil {
		return err
	}
	st.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != "ping" {
		return fmt.Errorf("echo: %q, %v", got, err)
	}
	return nil
}

// TestSimResumption: over a simulated link with a fixed one-way delay, the
// first connect costs the Retry, TLS and confirmation round trips; a reconnect
// with the session ticket and address token of the first session costs
// exactly one round trip of virtual time and resumes TLS. A token that cannot
// be taken (replayed, forged, from another IP address, expired) falls back to
// a Retry cleanly: two round trips (Retry, resumed TLS).
func TestSimResumption(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 10 * time.Millisecond
		rtt := 2 * delay
		nw, err := simnet.New(simnet.Config{Seed: 1, Link: simnet.LinkConfig{Delay: delay}})
		if err != nil {
			t.Fatal(err)
		}
		defer nw.Close()
		sc, err := nw.Listen(simServer)
		if err != nil {
			t.Fatal(err)
		}
		l, err := ListenPacket(sc, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go echoStreams(l)
		cache := tls.NewLRUClientSessionCache(8)
		cfg := pin(l, &Config{TLS: &tls.Config{ClientSessionCache: cache}})
		key := simServer.Addr().String() // DialPacket's ServerName, the cache key
		port := uint16(6000)
		entry := func() *tls.ClientSessionState {
			cs, ok := cache.Get(key)
			if !ok || cs == nil {
				t.Fatalf("no session ticket cached for %s", key)
			}
			return cs
		}
		// withToken returns cs with its stored address token changed by f.
		withToken := func(cs *tls.ClientSessionState, f func(tok []byte)) *tls.ClientSessionState {
			id, st, err := cs.ResumptionState()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for i, x := range st.Extra {
				if len(x) > len(tokenExtraLabel) && string(x[:len(tokenExtraLabel)]) == tokenExtraLabel {
					x = append([]byte(nil), x...)
					f(x[len(tokenExtraLabel):])
					st.Extra[i], found = x, true
				}
			}
			if !found {
				t.Fatal("no address token stored with the ticket")
			}
			ncs, err := tls.NewResumptionState(id, st)
			if err != nil {
				t.Fatal(err)
			}
			return ncs
		}
		var replay *tls.ClientSessionState
		tests := []struct {
			name    string
			from    netip.Addr
			before  func()
			want    time.Duration
			resumed bool
			retries uint64 // Initials answered with a Retry because of the token
		}{
			{name: "first connect", from: simClient.Addr(), want: 3 * rtt}, // Retry, TLS, confirmation
			{name: "resumed", from: simClient.Addr(), before: func() { replay = entry() }, want: rtt, resumed: true},
			{name: "replayed token", from: simClient.Addr(), before: func() { cache.Put(key, replay) }, want: 2 * rtt, resumed: true, retries: 1},
			{name: "resumed again", from: simClient.Addr(), want: rtt, resumed: true},
			{name: "forged token", from: simClient.Addr(), before: func() {
				cache.Put(key, withToken(entry(), func(tok []byte) { tok[len(tok)-1] ^= 1 }))
			}, want: 2 * rtt, resumed: true, retries: 1},
			{name: "token's time changed", from: simClient.Addr(), before: func() {
				cache.Put(key, withToken(entry(), func(tok []byte) { tok[8] ^= 1 }))
			}, want: 2 * rtt, resumed: true, retries: 1},
			{name: "another client IP", from: netip.MustParseAddr("10.0.0.3"), want: 2 * rtt, resumed: true, retries: 1},
			{name: "resumed from that IP", from: netip.MustParseAddr("10.0.0.3"), want: rtt, resumed: true},
			{name: "expired token", from: netip.MustParseAddr("10.0.0.3"), before: func() {
				time.Sleep(addrTokenLifetime + time.Minute) // virtual time: the token ages
			}, want: 2 * rtt, resumed: true, retries: 1},
		}
		for _, tt := range tests {
			if tt.before != nil {
				tt.before()
			}
			port++
			cc, err := nw.Listen(netip.AddrPortFrom(tt.from, port))
			if err != nil {
				t.Fatal(err)
			}
			bad0 := l.Stats().Counters[CounterDropsBadCookie]
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			start := time.Now()
			s, err := DialPacket(ctx, cc, simServer, cfg)
			took := time.Since(start)
			if err != nil {
				t.Fatalf("%s: dial: %v", tt.name, err)
			}
			cs := s.ConnectionState()
			err = roundTrip(ctx, s)
			s.Close()
			<-s.Done()
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			t.Logf("%s: connect took %v of virtual time (RTT %v), resumed %v", tt.name, took, rtt, cs.DidResume)
			if took != tt.want {
				t.Errorf("%s: connect took %v, want %v (%.1f RTT)", tt.name, took, tt.want, float64(tt.want)/float64(rtt))
			}
			if cs.DidResume != tt.resumed {
				t.Errorf("%s: DidResume %v, want %v", tt.name, cs.DidResume, tt.resumed)
			}
			if got := l.Stats().Counters[CounterDropsBadCookie] - bad0; got != tt.retries {
				t.Errorf("%s: %d Initials refused for their token, want %d", tt.name, got, tt.retries)
			}
		}
	})
}

// TestSimResumptionLossy: through 20% loss, duplication and reordering each
// way, the session ticket and address token still reach the client (they
// are resent while lost), and the reconnect resumes TLS, for 20 seeds.
func TestSimResumptionLossy(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				link := simnet.LinkConfig{Loss: 0.2, Duplicate: 0.05, Reorder: 0.1, Delay: 5 * time.Millisecond, Jitter: time.Millisecond}
				nw, err := simnet.New(simnet.Config{Seed: seed, Link: link})
				if err != nil {
					t.Fatal(err)
				}
				defer nw.Close()
				sc, err := nw.Listen(simServer)
				if err != nil {
					t.Fatal(err)
				}
				l, err := ListenPacket(sc, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer l.Close()
				go echoStreams(l)
				cache := tls.NewLRUClientSessionCache(8)
				cfg := pin(l, &Config{TLS: &tls.Config{ClientSessionCache: cache}})
				probe := &tls.Config{ClientSessionCache: cache, ServerName: simServer.Addr().String()}
				for i, wantResumed := range []bool{false, true} {
					cc, err := nw.Listen(netip.AddrPortFrom(simClient.Addr(), uint16(7000+i)))
					if err != nil {
						t.Fatal(err)
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					s, err := DialPacket(ctx, cc, simServer, cfg)
					if err != nil {
						cancel()
						t.Fatalf("seed %d: dial %d: %v", seed, i, err)
					}
					err = roundTrip(ctx, s)
					if err == nil && i == 0 {
						waitFor(t, 30*time.Second, func() bool { return cachedAddrToken(probe) != nil }, func() string {
							return fmt.Sprintf("seed %d: no ticket with an address token cached", seed)
						})
					}
					if got := s.ConnectionState().DidResume; got != wantResumed {
						t.Errorf("seed %d: dial %d: DidResume %v, want %v", seed, i, got, wantResumed)
					}
					s.Close()
					<-s.Done()
					cancel()
					if err != nil {
						t.Fatalf("seed %d: dial %d: %v", seed, i, err)
					}
				}
			})
		})
	}
}

// TestDialerResumes: a Dialer without a ClientSessionCache of its own keeps
// tickets in its default cache, so the session that replaces a closed one
// resumes TLS (on loopback); the connect times are logged.
func TestDialerResumes(t *testing.T) {
	l, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go echoStreams(l)
	d := &Dialer{Config: &Config{PinnedSHA256: l.CertificateSHA256()}}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var took [2]time.Duration
	for i, wantResumed := range []bool{false, true} {
		start := time.Now()
		c, err := d.DialContext(ctx, "udp", l.Addr().String())
		took[i] = time.Since(start)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		s := c.(*Stream).Session()
		c.Close()
		if err := roundTrip(ctx, s); err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i == 0 {
			probe := &tls.Config{ClientSessionCache: d.tickets, ServerName: "127.0.0.1"}
			waitFor(t, 5*time.Second, func() bool { return cachedAddrToken(probe) != nil }, func() string {
				return "no ticket with an address token in the Dialer's cache"
			})
		}
		if got := s.ConnectionState().DidResume; got != wantResumed {
			t.Fatalf("dial %d: DidResume %v, want %v", i, got, wantResumed)
		}
		s.Close()
		<-s.Done()
	}
	if bad := l.Stats().Counters[CounterDropsBadCookie]; bad != 0 {
		t.Fatalf("%d Initials refused for their cookie or token, want 0", bad)
	}
	t.Logf("loopback connect: first %v (Retry, TLS, confirmation), resumed %v (one round trip)", took[0], took[1])
}
