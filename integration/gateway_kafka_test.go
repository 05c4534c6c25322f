package integration

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/plugin"
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

// TestGatewayFailover: two gateways in front of one broker; the one the
// clients use is killed mid-stream. Every record arrives, none twice
// (idempotent producer), the dead gateway's breaker opens and traffic
// continues through the other.
func TestGatewayFailover(t *testing.T) {
	broker := kxTCPBroker(t, "fo", 6)
	gw1, url1 := kxGateway(t, "raptor://127.0.0.1:0", "tcp://"+broker)
	gw2, url2 := kxGateway(t, "raptor://127.0.0.1:0", "tcp://"+broker)
	var opened atomic.Int64 // unix nanos when gw1's breaker opened
	d, err := kafka.NewDialer(
		kafka.WithGateways(broker, url1, url2),
		kafka.WithFailover(plugin.FailoverConfig{
			FailureThreshold: 2,
			OpenTimeout:      time.Minute, // stays open for the rest of the test
			DialTimeout:      500 * time.Millisecond,
			OnStateChange: func(ep string, _, to gobreaker.State) {
				if ep == url1 && to == gobreaker.StateOpen {
					opened.CompareAndSwap(0, time.Now().UnixNano())
				}
			},
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Second)
	defer cancel()

	var (
		killOnce        sync.Once
		killed          atomic.Int64 // unix nanos of the kill
		acked, consumed atomic.Int64
		consumedAtKill  atomic.Int64
		firstRecv       atomic.Int64 // unix nanos of the first record consumed after the kill
		ackMu           sync.Mutex
		lastAck, ackGap int64 // after the kill: last ack (unix nanos), longest gap between acks
		gw1Before       plugin.RelayStats
		gw2Before       plugin.RelayStats
		killDone        = make(chan struct{})
	)
	// Kill gateway 1 when half the records are acknowledged: the producer
	// and the consumer are both mid-stream.
	kill := func() {
		killOnce.Do(func() {
			gw1Before, gw2Before = gw1.Stats(), gw2.Stats()
			consumedAtKill.Store(consumed.Load())
			now := time.Now().UnixNano()
			ackMu.Lock()
			lastAck = now
			ackMu.Unlock()
			killed.Store(now)
			go func() { defer close(killDone); gw1.Close() }()
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

	if gw1Before.Accepted == 0 {
		t.Fatalf("no stream went through gateway 1 before the kill (gateway 2: %+v): nothing was failed over", gw2Before)
	}
	st := d.Failover(broker).Status()
	t.Logf("at kill: gateway 1 %d streams active, gateway 2 %d; after: %+v", gw1Before.Active, gw2Before.Active, st)
	if opened.Load() == 0 || st[0].State != "open" {
		t.Fatalf("gateway 1 breaker did not open: %+v", st)
	}
	if st[1].State != "closed" || gw2.Stats().Accepted <= gw2Before.Accepted && gw1Before.Active > 0 {
		t.Fatalf("traffic did not move to gateway 2: %+v, gateway 2 %+v", st, gw2.Stats())
	}
	k := killed.Load()
	ms := func(ns int64) string {
		if ns == 0 {
			return "n/a (none after the kill)"
		}
		return time.Duration(ns - k).Round(time.Millisecond).String()
	}
	t.Logf("failover switch: breaker open %s after the kill; longest pause between produce acks after it %v; first new record consumed after %s",
		ms(opened.Load()), time.Duration(ackGap).Round(time.Millisecond), ms(firstRecv.Load()))
	if ackGap == 0 || firstRecv.Load() == 0 {
		t.Fatal("no traffic after the kill: nothing shows the switch")
	}
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
