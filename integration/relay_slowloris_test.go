package integration

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// slowlorisUpstream is a TCP echo server that counts its open connections.
type slowlorisUpstream struct {
	ln             net.Listener
	open, accepted atomic.Int64
	wg             sync.WaitGroup
}

func newSlowlorisUpstream(t *testing.T) *slowlorisUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &slowlorisUpstream{ln: ln}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.open.Add(1)
			u.accepted.Add(1)
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer u.open.Add(-1)
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); u.wg.Wait() })
	return u
}

// slowlorisAttack is the gateway row of issue #9: from one source
// (127.0.0.2), sessions sessions each open streamsPerSession streams and
// write one byte on the last dataStreams of them, highest first. The first
// such write names the highest stream ID, so the gateway's side opens every
// stream below it at once: one 16-byte datagram per data stream, thousands
// of streams, nearly all silent.
func slowlorisAttack(t *testing.T, ctx context.Context, gw string, sessions, streamsPerSession, dataStreams int) {
	t.Helper()
	for s := 0; s < sessions; s++ {
		// A transport of its own per session (a transport reuses one
		// session per remote), all from 127.0.0.2.
		attacker := plugin.New(plugin.WithPacketConn(func(string) (reliable.PacketConn, error) {
			return udpio.Listen("127.0.0.2:0")
		}))
		t.Cleanup(func() { attacker.Close() })
		first, err := attacker.Dial(ctx, gw)
		if err != nil {
			t.Fatal(err)
		}
		sess := first.(*reliable.Stream).Session()
		streams := []*reliable.Stream{first.(*reliable.Stream)}
		for len(streams) < streamsPerSession {
			st, err := sess.OpenStream(ctx)
			if err != nil {
				t.Fatalf("attacker session %d: stream %d: %v", s, len(streams), err)
			}
			streams = append(streams, st)
		}
		for i := 0; i < dataStreams; i++ {
			streams[len(streams)-1-i].Write([]byte{0})
		}
	}
}

// TestGatewaySlowloris: the attack holds a bounded number of relay streams,
// upstream connections and goroutines; a legitimate client from another
// address is served during the attack; the silent streams are released
// after the first-byte timeout and the rest after the idle timeout.
func TestGatewaySlowloris(t *testing.T) {
	const sessions, perSession, withData = 6, 1024, 32
	up := newSlowlorisUpstream(t)
	rcfg := slowlorisRelayConfig("tcp://" + up.ln.Addr().String())
	gw, err := plugin.NewRelay(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := plugin.New()
	t.Cleanup(func() { tr.Close() })
	ln, err := tr.Listen("raptor://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kxServe(t, gw, ln)
	gwURL := "raptor://" + ln.Addr().String()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()

	slowlorisAttack(t, ctx, gwURL, sessions, perSession, withData)
	// Wait until the gateway has seen every stream the attack opened
	// (accepted, or dropped by the listener's accept queue).
	want := uint64(sessions * perSession)
	rl := ln.(*reliable.Listener)
	var peakStreams, peakUp int64
	peakG := 0
	for {
		lst := rl.Stats()
		st := gw.Stats()
		peakStreams, peakUp = max(peakStreams, st.Active), max(peakUp, up.open.Load())
		peakG = max(peakG, runtime.NumGoroutine()-baseGoroutines)
		seen := st.Accepted + lst.Get(reliable.CounterDropsAcceptQueue)
		if seen >= want {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the gateway saw %d of the %d attack streams", seen, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
	during := gw.Stats()
	goroutines := max(peakG, runtime.NumGoroutine()-baseGoroutines)
	upOpen := max(peakUp, up.open.Load())
	during.Active = max(peakStreams, during.Active) // the peak: the first-byte timeout may already be at work

	// A legitimate client from 127.0.0.1 is served during the attack.
	legit := plugin.New()
	defer legit.Close()
	served := false
	var legitErr error
	if c, err := legit.Dial(ctx, gwURL); err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("ping")); err == nil {
			b := make([]byte, 4)
			_, legitErr = io.ReadFull(c, b)
			served = legitErr == nil && string(b) == "ping"
		} else {
			legitErr = err
		}
		c.Close()
	} else {
		legitErr = err
	}
	t.Logf("during the attack (%d sessions x %d streams from 127.0.0.2, %d with one byte), peaks: %d relay streams open, %d upstream TCP connections, +%d goroutines; legitimate client served: %v (%v); relay %+v; accept-queue drops %d",
		sessions, perSession, withData, during.Active, upOpen, goroutines, served, legitErr, during, acceptDrops(rl))
	slowlorisCheck(t, ctx, gw, up, baseGoroutines, during, upOpen, goroutines, served)
}

// waitUntil polls cond every 10 ms until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// slowlorisRelayConfig is the gateway under attack: the defaults, with
// short timeouts so the test sees them act.
func slowlorisRelayConfig(upstream string) plugin.RelayConfig {
	return plugin.RelayConfig{Upstreams: []string{upstream}, Framing: plugin.FramingKafka,
		FirstByteTimeout: time.Second, IdleTimeout: 2 * time.Second}
}

// slowlorisCheck asserts the bounds that hold during the attack and that
// everything is released after the timeouts.
func slowlorisCheck(t *testing.T, ctx context.Context, gw *plugin.Relay, up *slowlorisUpstream, baseGoroutines int,
	during plugin.RelayStats, upOpen int64, goroutines int, served bool) {
	t.Helper()
	const perSource, dataStreams = 1024, 6 * 32 // the default cap; the attack's streams with data
	if during.Active > perSource {
		t.Errorf("%d relay streams open from one source, over the per-source cap %d", during.Active, perSource)
	}
	if upOpen > dataStreams {
		t.Errorf("%d upstream connections for %d streams that sent a byte", upOpen, dataStreams)
	}
	if goroutines > perSource+2*dataStreams+300 {
		t.Errorf("+%d goroutines during the attack", goroutines)
	}
	if during.SourceRejected == 0 {
		t.Errorf("no stream refused at the per-source or per-session cap: %+v", during)
	}
	if !served {
		t.Errorf("the legitimate client was not served during the attack")
	}
	start := time.Now()
	if !waitUntil(ctx, func() bool { st := gw.Stats(); return st.Active == 0 && st.UpstreamActive == 0 && up.open.Load() == 0 }) {
		t.Fatalf("attack streams not released: relay %+v, upstream connections %d", gw.Stats(), up.open.Load())
	}
	released := time.Since(start)
	runtime.GC()
	var after int
	if !waitUntil(ctx, func() bool { after = runtime.NumGoroutine() - baseGoroutines; return after <= 100 }) {
		t.Errorf("+%d goroutines after the streams were released", after)
	}
	st := gw.Stats()
	t.Logf("released %v later: relay %+v; +%d goroutines (the attacker's sessions are still up)", released.Round(time.Millisecond), st, after)
	if st.IdleClosed == 0 {
		t.Errorf("no stream closed by the first-byte or idle timeout: %+v", st)
	}
}

// acceptDrops is how many streams the listener's accept queue refused.
func acceptDrops(l *reliable.Listener) uint64 {
	st := l.Stats()
	return st.Get(reliable.CounterDropsAcceptQueue)
}
