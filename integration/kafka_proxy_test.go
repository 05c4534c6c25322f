package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/cli/clitest"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/plugin/kafkarelay"
	"github.com/raptormq/raptor/reliable"
)

// kcatPath returns the kcat binary (Debian package kafkacat). Without it the
// test is skipped, except under CI=true, where scripts/test.sh installs it
// and a missing kcat is a failure.
func kcatPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("kcat not found in CI: scripts/test.sh installs Debian's kafkacat")
	}
	t.Skip("kcat not installed (apt-get install kafkacat); scripts/test.sh installs it")
	return ""
}

// kpCluster starts an embedded cluster of n brokers (TCP and Raptor on
// each port) with topic, and moves partition p's leader to broker p%n so
// every broker leads some.
func kpCluster(t *testing.T, n int, topic string, partitions int) *kafka.Broker {
	t.Helper()
	b, err := kafka.NewBroker(kafka.BrokerConfig{Brokers: n, Topics: []string{fmt.Sprintf("%s:%d", topic, partitions)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for p := 0; p < partitions; p++ {
		if err := b.Cluster().MoveTopicPartition(topic, int32(p), int32(p%n)); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// kpProxy starts a Kafka-aware proxy (TCP in, Raptor out) in front of
// the cluster whose bootstrap broker is seed.
func kpProxy(t *testing.T, seed string, rc plugin.RelayConfig) *kafkarelay.Relay {
	t.Helper()
	r, err := kafkarelay.New(kafkarelay.Config{Listen: "tcp://127.0.0.1:0", Upstreams: []string{"raptor://" + seed}, Relay: rc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// kpRaptorBytes sums the stream bytes the brokers' Raptor listeners
// received.
func kpRaptorBytes(b *kafka.Broker) uint64 {
	var lns []net.Listener
	for _, l := range b.Listeners() {
		lns = append(lns, l)
	}
	src, ok := plugin.ListenerStats(lns...)
	if !ok {
		return 0
	}
	st := src()
	return st.Get(reliable.CounterStreamBytesReceived)
}

// kcatCmd runs kcat with args, killed (SIGTERM, then SIGKILL) when ctx
// ends.
func kcatCmd(ctx context.Context, kcat string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, kcat, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// TestKcatThroughProxyToThreeBrokers: librdkafka (kcat) reaches a
// 3-broker Raptor cluster through one Kafka-aware proxy. 10,000 records go
// to a 6-partition topic led by all three brokers and come back through a
// 2-member consumer group exactly once; the brokers saw no TCP connection
// and their Raptor listeners carried the data.
func TestKcatThroughProxyToThreeBrokers(t *testing.T) {
	kcat := kcatPath(t)
	const topic, parts, n = "kcat6", 6, 10000
	b := kpCluster(t, 3, topic, parts)
	px := kpProxy(t, b.Addr(), plugin.RelayConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// Two group members, started before any record exists.
	const group = "kcat-group"
	var mu sync.Mutex
	type pos struct{ p, o int }
	seen := map[int][]pos{} // sequence -> where it was read
	var lines atomic.Int64
	var members []*exec.Cmd
	var readers sync.WaitGroup
	for i := 0; i < 2; i++ {
		cmd := kcatCmd(ctx, kcat, "-b", px.Addr(), "-G", group, "-X", "auto.offset.reset=earliest",
			"-X", "topic.metadata.refresh.interval.ms=1000", "-q", "-u", "-f", "%p %o %s\n", topic)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr clitest.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		members = append(members, cmd)
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) != 3 {
					t.Errorf("member %d: unexpected line %q", i, sc.Text())
					continue
				}
				p, _ := strconv.Atoi(f[0])
				o, _ := strconv.Atoi(f[1])
				seq, err := strconv.Atoi(f[2])
				if err != nil {
					t.Errorf("member %d: bad value %q", i, f[2])
					continue
				}
				mu.Lock()
				seen[seq] = append(seen[seq], pos{p, o})
				mu.Unlock()
				lines.Add(1)
			}
		}()
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("kcat member %d stderr:\n%s", i, stderr.String())
			}
		})
	}
	// Wait until the group has both members with all partitions assigned
	// (asked over Raptor, so it adds no TCP connection to the brokers).
	d, err := kafka.NewDialer()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), d.Opt())
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	for {
		groups, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			g := groups[group]
			assigned := 0
			for _, m := range g.Members {
				if ca, ok := m.Assigned.AsConsumer(); ok {
					for _, tp := range ca.Topics {
						assigned += len(tp.Partitions)
					}
				}
			}
			if g.State == "Stable" && len(g.Members) == 2 && assigned == parts {
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the kcat group did not settle with 2 members: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// Produce n records, each its sequence number as key and value (the
	// key spreads them over the partitions; without one librdkafka sticks
	// to one partition per batch).
	var in strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "%d:%d\n", i, i)
	}
	prod := kcatCmd(ctx, kcat, "-b", px.Addr(), "-P", "-K", ":", "-t", topic)
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v: %s", err, out)
	}
	for lines.Load() < n && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	// A short grace period shows duplicates that would arrive late.
	select {
	case <-time.After(500 * time.Millisecond):
	case <-ctx.Done():
	}
	for _, m := range members {
		m.Process.Signal(syscall.SIGTERM)
	}
	readers.Wait()
	for _, m := range members {
		m.Wait()
	}

	mu.Lock()
	lost, dups, redelivered := 0, 0, 0
	parted := map[int]int{}
	for i := 0; i < n; i++ {
		ps := seen[i]
		if len(ps) == 0 {
			lost++
			continue
		}
		parted[ps[0].p]++
		for _, q := range ps[1:] {
			if q == ps[0] {
				redelivered++
			} else {
				dups++
			}
		}
	}
	mu.Unlock()
	t.Logf("consumed %d lines: %d lost, %d duplicated in the log, %d redelivered; records per partition %v", lines.Load(), lost, dups, redelivered, parted)
	if lost != 0 || dups != 0 || redelivered != 0 || len(seen) != n {
		t.Fatalf("want every record exactly once: %d lost, %d duplicates, %d redelivered, %d distinct values", lost, dups, redelivered, len(seen))
	}
	if len(parted) != parts {
		t.Fatalf("records reached %d partitions, want %d (leaders on all brokers)", len(parted), parts)
	}
	st := b.Stats()
	raptorBytes := kpRaptorBytes(b)
	t.Logf("brokers: %d TCP connections, %d Raptor streams, %d B received over Raptor; proxy %+v, rewrites %+v",
		st.TCPConns, st.RaptorStreams, raptorBytes, px.Relay().Stats(), px.Stats())
	if st.TCPConns != 0 {
		t.Fatalf("the brokers accepted %d TCP connections; every client byte should come over Raptor", st.TCPConns)
	}
	if raptorBytes < uint64(in.Len()) {
		t.Fatalf("brokers received %d B over Raptor, less than the %d B of keys and values", raptorBytes, in.Len())
	}
	if got := len(px.Brokers()); got != 3 {
		t.Fatalf("proxy serves %d brokers, want 3", got)
	}
}

// TestProxyFollowsLeaderMovesAndNewBroker: a franz-go client that knows
// only the proxy (plain TCP) follows partition leadership moving between
// brokers mid-run and a broker joining the cluster, without loss or
// duplicates.
func TestProxyFollowsLeaderMovesAndNewBroker(t *testing.T) {
	const topic, parts, n = "moves", 6, 20000
	b := kpCluster(t, 3, topic, parts)
	px := kpProxy(t, b.Addr(), plugin.RelayConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var acked atomic.Int64
	var moved, added sync.Once
	var movers sync.WaitGroup // the leadership moves finish before the checks
	rotated := make(chan struct{})
	var newNode atomic.Int32
	newNode.Store(-1)
	c := b.Cluster()
	onAck := func() {
		switch a := acked.Add(1); {
		case a == n/3:
			moved.Do(func() {
				movers.Go(func() { // rotate every leader to the next broker
					defer close(rotated)
					for p := 0; p < parts; p++ {
						c.MoveTopicPartition(topic, int32(p), int32((p+1)%3))
					}
				})
			})
		case a == 2*n/3:
			added.Do(func() {
				movers.Go(func() {
					// After the rotation: on a fast run both moves start
					// within milliseconds, and CI saw the rotation move
					// partition 4 off the new broker after this had moved it on.
					<-rotated
					id, _, err := c.AddNode(-1, 0)
					if err != nil {
						t.Errorf("AddNode: %v", err)
						return
					}
					for p := 0; p < parts; p += 2 { // the new broker leads half
						c.MoveTopicPartition(topic, int32(p), id)
					}
					newNode.Store(id)
				})
			})
		}
	}
	// At most n/30 records wait for their acknowledgement, so that the
	// producer still sends when the leaders move and its next requests meet
	// the old leaders (whose answers carry the KIP-951 endpoints the proxy
	// rewrites); unbounded, it could have sent everything by then.
	res := kxWorkload{Seed: px.Addr(), Topic: topic, Partitions: parts, N: n, OnAck: onAck,
		Opts: []kgo.Opt{kgo.MetadataMinAge(100 * time.Millisecond), kgo.MaxBufferedRecords(n / 30)}}.run(t, ctx)
	// The moves run beside the workload, which can finish first on a fast
	// run (CI once checked partition 4's leader before its move): wait.
	movers.Wait()
	res.check(t, n)
	id := newNode.Load()
	if id < 0 {
		t.Fatal("the new broker was never added")
	}
	served := false
	for _, br := range px.Brokers() {
		served = served || br.NodeID == id
	}
	if !served || b.Stats().TCPConns != 0 {
		t.Fatalf("proxy brokers %+v (new node %d), broker TCP connections %d", px.Brokers(), id, b.Stats().TCPConns)
	}
	for p := 0; p < parts; p += 2 {
		if l := c.LeaderFor(topic, int32(p)); l != id {
			t.Fatalf("partition %d led by %d, want the new broker %d", p, l, id)
		}
	}
	rw := px.Stats()
	t.Logf("proxy %+v, rewrites %+v, brokers %+v", px.Relay().Stats(), rw, px.Brokers())
	if rw.RewrittenBy[0]+rw.RewrittenBy[1] == 0 {
		t.Fatalf("no Produce or Fetch response carried KIP-951 leader endpoints to rewrite: %+v", rw.RewrittenBy)
	}
}

// TestGatewayKafkaFrontsTCPCluster: franz-go over Raptor through one
// Kafka-aware gateway to a 3-broker TCP-only cluster: the client is given
// only the gateway's address, reaches every broker through it, and gets
// every record exactly once.
func TestGatewayKafkaFrontsTCPCluster(t *testing.T) {
	const topic, parts = "gwk", 6
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for p := 0; p < parts; p++ {
		c.MoveTopicPartition(topic, int32(p), int32(p%3))
	}
	gw, err := kafkarelay.New(kafkarelay.Config{Listen: "raptor://127.0.0.1:0", Upstreams: []string{"tcp://" + c.ListenAddrs()[0]}})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	d, err := kafka.NewDialer() // every advertised address at raptor://host:port
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	kxWorkload{Seed: gw.Addr(), Topic: topic, Partitions: parts, N: 30000, Opts: []kgo.Opt{d.Opt()}}.run(t, ctx).check(t, 30000)
	if got := gw.Brokers(); len(got) != 3 {
		t.Fatalf("gateway serves %+v, want 3 brokers", got)
	}
	st := gw.Relay().Stats()
	if st.UpstreamErrors != 0 || st.BytesUp < 100_000 {
		t.Fatalf("gateway stats %+v", st)
	}
	t.Logf("gateway %+v, rewrites %+v, brokers %+v", st, gw.Stats(), gw.Brokers())
}

// TestKcatUnreachableUpstream: when the proxy cannot reach its upstream,
// kcat sees a connection failure, not a garbled response, and the proxy
// keeps serving the client whose connections were already up.
func TestKcatUnreachableUpstream(t *testing.T) {
	kcat := kcatPath(t)
	broker := kxTCPBroker(t, "unreach", 1)
	// kcat -> proxy (TCP in, Raptor out) -> gateway (Raptor in, TCP out,
	// on the broker's port number) -> forwarder -> TCP broker. Stopping the
	// forwarder makes the upstream unreachable for new connections only.
	fwd := newKxForwarder(t, broker)
	_, port, _ := strings.Cut(broker, ":")
	kxGateway(t, "raptor://127.0.0.1:"+port, "tcp://"+fwd.Addr())
	px := kpProxy(t, broker, plugin.RelayConfig{DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if out, err := kcatCmd(ctx, kcat, "-b", px.Addr(), "-L", "-m", "10").CombinedOutput(); err != nil || !strings.Contains(string(out), "1 brokers") {
		t.Fatalf("kcat -L through the proxy before the failure: %v: %s", err, out)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(px.Addr()), kgo.DefaultProduceTopic("unreach"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	fwd.StopAccepting()
	out, err := kcatCmd(ctx, kcat, "-b", px.Addr(), "-L", "-m", "3").CombinedOutput()
	t.Logf("kcat -L with the upstream unreachable: %v\n%s", err, out)
	if err == nil {
		t.Fatal("kcat -L succeeded with the upstream unreachable")
	}
	msg := string(out)
	if strings.Contains(msg, "Invalid response size") || strings.Contains(msg, "RAPTOR") {
		t.Fatalf("kcat saw bytes the proxy wrote into the Kafka stream:\n%s", msg)
	}
	if !strings.Contains(msg, "Disconnected") && !strings.Contains(msg, "reset") && !strings.Contains(msg, "Connection") {
		t.Fatalf("kcat did not report a connection failure:\n%s", msg)
	}
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
			t.Fatalf("produce after the failure, over connections already up: %v", err)
		}
	}
	if st := px.Relay().Stats(); st.UpstreamErrors == 0 {
		t.Fatalf("proxy counted no upstream error: %+v", st)
	}
}

// TestKafkaGatewayFailover: two Kafka-aware gateways in front of one
// 3-broker TCP cluster, the client's seed mapped to both through the
// failover dialer. The gateway in use is killed mid-run; the client goes
// back to its seed, reaches the other gateway, learns that gateway's
// broker listeners from its metadata, and every record arrives once.
func TestKafkaGatewayFailover(t *testing.T) {
	const topic, parts, n = "gwfo", 6, 30000
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var gws [2]*kafkarelay.Relay
	for i := range gws {
		gws[i], err = kafkarelay.New(kafkarelay.Config{Listen: "raptor://127.0.0.1:0", Upstreams: []string{"tcp://" + c.ListenAddrs()[0]}})
		if err != nil {
			t.Fatal(err)
		}
		defer gws[i].Close()
	}
	const seed = "kafka-cluster:9092" // a name only the dialer resolves: to either gateway
	d, err := kafka.NewDialer(
		kafka.WithGateways(seed, "raptor://"+gws[0].Addr(), "raptor://"+gws[1].Addr()),
		kafka.WithFailover(plugin.FailoverConfig{FailureThreshold: 1, OpenTimeout: time.Minute, DialTimeout: time.Second}),
		kafka.WithTransportOptions(plugin.WithRaptorConfig(&reliable.Config{HandshakeTimeout: time.Second, IdleTimeout: 5 * time.Second})),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 80*time.Second)
	defer cancel()
	var killed atomic.Int32
	killed.Store(-1)
	var before [2]uint64
	var acked atomic.Int64
	closed := make(chan struct{})
	onAck := func() {
		if acked.Add(1) != n/3 {
			return
		}
		// Kill the gateway carrying the most live streams (ties: the most accepted).
		sa, sb := gws[0].Relay().Stats(), gws[1].Relay().Stats()
		a, b := sa.Active<<32+int64(sa.Accepted), sb.Active<<32+int64(sb.Accepted)
		victim := 0
		if b > a {
			victim = 1
		}
		before[1-victim] = gws[1-victim].Relay().Stats().Accepted
		killed.Store(int32(victim))
		go func() {
			gws[victim].Close()
			close(closed)
		}()
	}
	// At most n/30 records wait for their acknowledgement, so that two thirds
	// are still to be produced when the gateway dies: unbounded, the producer
	// had every record sent in a few batches by the kill, which then could
	// find nothing left to move (CI: the survivor took no new stream).
	res := kxWorkload{Seed: seed, Topic: topic, Partitions: parts, N: n, OnAck: onAck,
		Opts: []kgo.Opt{d.Opt(), kgo.MetadataMinAge(200 * time.Millisecond), kgo.MaxBufferedRecords(n / 30)}}.run(t, ctx)
	res.check(t, n)
	v := killed.Load()
	if v < 0 {
		t.Fatal("no gateway was killed")
	}
	select {
	case <-closed: // its counters are final
	case <-ctx.Done():
		t.Fatal("the killed gateway's Close did not return")
	}
	alive := gws[1-v]
	// The victim carried live connections (the most of the two), and with
	// two thirds of the records still to produce and consume, the client
	// must have come back through the survivor: both are asserted.
	fc, after := gws[v].Relay().Stats().ForceClosed, alive.Relay().Stats().Accepted
	if fc == 0 {
		t.Errorf("the kill cut no live connection (ForceClosed 0): it tested no failover")
	}
	if after <= before[1-v] {
		t.Errorf("the survivor took no new stream after the kill (%d before, %d after): the client did not fail over", before[1-v], after)
	}
	t.Logf("the kill cut %d live connections; survivor streams: %d before, %d after", fc, before[1-v], after)
	t.Logf("killed gateway %d; survivor %+v, brokers %+v; failover %+v", v, alive.Relay().Stats(), alive.Brokers(), d.Failover(seed).Status())
}
