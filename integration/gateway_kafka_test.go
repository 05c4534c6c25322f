package integration

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// kxTCPBroker starts a TCP-only kfake broker with topic.
func kxTCPBroker(t *testing.T, topic string, partitions int32) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// kxGateway starts a Raptor-in, TCP-out relay on listen.
func kxGateway(t *testing.T, listen, upstream string) (*plugin.Relay, string) {
	t.Helper()
	tr := plugin.New()
	t.Cleanup(func() { tr.Close() })
	r, err := plugin.NewRelay(plugin.RelayConfig{Upstreams: []string{upstream}, Framing: plugin.FramingKafka, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tr.Listen(listen)
	if err != nil {
		t.Fatal(err)
	}
	kxServe(t, r, ln)
	return r, "raptor://" + ln.Addr().String()
}

// TestGatewayToTCPOnlyBroker: franz-go over Raptor through the gateway to a
// broker that only speaks TCP. The gateway listens on the broker's port
// number over UDP, so the dialer's default mapping finds it.
func TestGatewayToTCPOnlyBroker(t *testing.T) {
	broker := kxTCPBroker(t, "gw", 6)
	_, port, _ := net.SplitHostPort(broker)
	gw, _ := kxGateway(t, "raptor://127.0.0.1:"+port, "tcp://"+broker)
	d, err := kafka.NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()
	kxWorkload{Seed: broker, Topic: "gw", Partitions: 6, N: kxRecords, Opts: []kgo.Opt{d.Opt()}}.run(t, ctx).check(t, kxRecords)
	st := gw.Stats()
	if st.Accepted == 0 || st.UpstreamErrors != 0 || st.BytesUp < 100_000 {
		t.Fatalf("gateway stats %+v", st)
	}
	t.Logf("gateway: %d streams, %d B up, %d B down", st.Accepted, st.BytesUp, st.BytesDown)
}

// TestGatewayFailover: two gateways in front of one broker; the one that
// carries the produce traffic is killed mid-stream (its listener and every
// session closed). Every record arrives, none twice (idempotent producer),
// the dead gateway's breaker opens and traffic continues through the other.
func TestGatewayFailover(t *testing.T) { kxFailover(t, false) }

// TestGatewayFailoverCrash: the same, but the gateway vanishes without a
// word (its packets black-holed, like a crashed host). The clients notice
// through Raptor's idle timeout (2 s here) and move on.
func TestGatewayFailoverCrash(t *testing.T) { kxFailover(t, true) }

// kxHoleGateway is a gateway whose packet path can be black-holed.
type kxHoleGateway struct {
	relay *plugin.Relay
	url   string
	hole  *kxBlackhole
}

func newKxHoleGateway(t *testing.T, upstream string) *kxHoleGateway {
	t.Helper()
	g := &kxHoleGateway{}
	tr := plugin.New(plugin.WithPacketConn(func(laddr string) (reliable.PacketConn, error) {
		c, err := udpio.Listen(laddr)
		if err != nil {
			return nil, err
		}
		g.hole = &kxBlackhole{PacketConn: c}
		return g.hole, nil
	}))
	t.Cleanup(func() { tr.Close() })
	r, err := plugin.NewRelay(plugin.RelayConfig{Upstreams: []string{upstream}, Framing: plugin.FramingKafka, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tr.Listen("raptor://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kxServe(t, r, ln)
	g.relay, g.url = r, "raptor://"+ln.Addr().String()
	return g
}

func kxFailover(t *testing.T, crash bool) {
	broker := kxTCPBroker(t, "fo", 6)
	gws := []*kxHoleGateway{newKxHoleGateway(t, "tcp://"+broker), newKxHoleGateway(t, "tcp://"+broker)}
	var opened [2]atomic.Int64 // unix nanos when each gateway's breaker opened
	const idle = 2 * time.Second
	opts := []kafka.DialerOption{
		kafka.WithGateways(broker, gws[0].url, gws[1].url),
		kafka.WithFailover(plugin.FailoverConfig{
			FailureThreshold: 2,
			OpenTimeout:      time.Minute, // stays open for the rest of the test
			DialTimeout:      500 * time.Millisecond,
			OnStateChange: func(ep string, _, to gobreaker.State) {
				for i, g := range gws {
					if ep == g.url && to == gobreaker.StateOpen {
						opened[i].CompareAndSwap(0, time.Now().UnixNano())
					}
				}
			},
		}),
	}
	// A crash is noticed through the idle timeout. A clean kill sends CLOSE,
	// but if that one datagram is lost on a loaded machine the client falls
	// back to the idle timeout too: keep it short in both cases so the test
	// measures failover, not the 30 s default.
	idleTimeout := 5 * time.Second
	if crash {
		idleTimeout = idle
	}
	opts = append(opts, kafka.WithTransportOptions(plugin.WithRaptorConfig(&reliable.Config{IdleTimeout: idleTimeout})))
	d, err := kafka.NewDialer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()

	var (
		once            sync.Once
		victim          = -1
		killed          atomic.Int64 // unix nanos of the kill
		acked, consumed atomic.Int64
		consumedAtKill  atomic.Int64
		firstRecv       atomic.Int64 // unix nanos of the first record consumed after the kill
		ackMu           sync.Mutex
		lastAck, ackGap int64 // after the kill: last ack (unix nanos), longest gap between acks
		before          [2]plugin.RelayStats
		killDone        = make(chan struct{})
	)
	// At half the acknowledgements, kill the gateway that carried more
	// bytes towards the broker: the one the producer uses.
	kill := func() {
		once.Do(func() {
			before[0], before[1] = gws[0].relay.Stats(), gws[1].relay.Stats()
			victim = 0
			if before[1].BytesUp > before[0].BytesUp {
				victim = 1
			}
			consumedAtKill.Store(consumed.Load())
			now := time.Now().UnixNano()
			ackMu.Lock()
			lastAck = now
			ackMu.Unlock()
			killed.Store(now)
			if crash {
				gws[victim].hole.dead.Store(true)
				close(killDone)
				return
			}
			go func() { defer close(killDone); gws[victim].relay.Close() }()
		})
	}
	res := kxWorkload{
		Seed: broker, Topic: "fo", Partitions: 6, N: kxRecords, Opts: []kgo.Opt{d.Opt()},
		OnConsumed: func(n int) {
			consumed.Store(int64(n))
			if k := killed.Load(); k != 0 && int64(n) > consumedAtKill.Load() {
				firstRecv.CompareAndSwap(0, time.Now().UnixNano())
			}
		},
		OnAck: func() {
			if killed.Load() != 0 {
				now := time.Now().UnixNano()
				ackMu.Lock()
				ackGap = max(ackGap, now-lastAck)
				lastAck = now
				ackMu.Unlock()
			} else if acked.Add(1) >= kxRecords/2 {
				kill()
			}
		},
	}.run(t, ctx)
	<-killDone
	res.check(t, kxRecords)

	other := 1 - victim
	st := d.Failover(broker).Status()
	t.Logf("killed gateway %d (%d streams, %d B up) while gateway %d had %d streams, %d B up; breakers after: %+v",
		victim+1, before[victim].Active, before[victim].BytesUp, other+1, before[other].Active, before[other].BytesUp, st)
	if before[victim].Active == 0 {
		t.Fatal("the killed gateway carried no stream: nothing was failed over")
	}
	if opened[victim].Load() == 0 || st[victim].State != "open" {
		t.Fatalf("the dead gateway's breaker did not open: %+v", st)
	}
	if st[other].State != "closed" || gws[other].relay.Stats().BytesUp <= before[other].BytesUp {
		t.Fatalf("traffic did not continue through the other gateway: %+v", gws[other].relay.Stats())
	}
	k := killed.Load()
	ms := func(ns int64) string {
		if ns == 0 {
			return "n/a (none after the kill)"
		}
		return time.Duration(ns - k).Round(time.Millisecond).String()
	}
	how := "killed (sessions closed)"
	if crash {
		how = fmt.Sprintf("crashed (silent; idle timeout %v)", idle)
	}
	ackMu.Lock()
	gap := time.Duration(ackGap).Round(time.Millisecond)
	ackMu.Unlock()
	t.Logf("failover switch, gateway %s: breaker open %s after; longest pause between produce acks %v; first new record consumed after %s",
		how, ms(opened[victim].Load()), gap, ms(firstRecv.Load()))
}

// kxBlackhole is a packet conn that can be made to vanish: once dead it
// drops everything both ways without a word, like a crashed host.
type kxBlackhole struct {
	reliable.PacketConn
	dead atomic.Bool
}

func (b *kxBlackhole) ReadBatch(bufs [][]byte, sizes []int, addrs []netip.AddrPort) (int, error) {
	for {
		n, err := b.PacketConn.ReadBatch(bufs, sizes, addrs)
		if err != nil || !b.dead.Load() {
			return n, err
		}
	}
}

func (b *kxBlackhole) WriteBatch(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	if b.dead.Load() {
		return len(bufs), nil
	}
	return b.PacketConn.WriteBatch(bufs, addrs)
}

// TestGatewayDrainMidStream: one of two gateways drains (graceful
// shutdown) while records flow. No request is cut (nothing force-closed),
// streams arriving during the drain are refused so the client's breaker
// opens, and every record arrives exactly once.
func TestGatewayDrainMidStream(t *testing.T) {
	broker := kxTCPBroker(t, "drain", 6)
	gw1, url1 := kxGateway(t, "raptor://127.0.0.1:0", "tcp://"+broker)
	_, url2 := kxGateway(t, "raptor://127.0.0.1:0", "tcp://"+broker)
	d, err := kafka.NewDialer(kafka.WithGateways(broker, url1, url2),
		kafka.WithFailover(plugin.FailoverConfig{OpenTimeout: time.Minute, DialTimeout: 500 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()
	var once sync.Once
	drained := make(chan error, 1)
	var started time.Time
	res := kxWorkload{
		Seed: broker, Topic: "drain", Partitions: 6, N: kxRecords, Opts: []kgo.Opt{d.Opt()},
		OnConsumed: func(n int) {
			if n >= kxRecords/2 {
				once.Do(func() {
					started = time.Now()
					go func() {
						dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
						defer dcancel()
						drained <- gw1.Shutdown(dctx)
					}()
				})
			}
		},
	}.run(t, ctx)
	if err := <-drained; err != nil {
		t.Fatalf("drain: %v", err)
	}
	res.check(t, kxRecords)
	st := gw1.Stats()
	t.Logf("gateway 1 drained in %v: %+v; breakers %+v", time.Since(started).Round(time.Millisecond), st, d.Failover(broker).Status())
	if st.ForceClosed != 0 {
		t.Fatalf("drain cut %d streams", st.ForceClosed)
	}
}
