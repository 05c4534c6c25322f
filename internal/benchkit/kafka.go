package benchkit

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// RunKafka runs a franz-go producer → embedded kfake broker → franz-go
// consumer over t (the broker listens on t, both clients dial over t) and
// returns two results: end-to-end latency at the fixed offered rate
// (suite "kafka", o.Rate records/s, o.Count records after o.Warmup) and the
// consumed record rate when the producer goes as fast as it can for
// o.Duration (suite "kafka-max"). Linger is 0; acks are all (the default).
func RunKafka(ctx context.Context, t Transport, o Options) ([]Result, error) {
	if o.Count == 0 {
		o.Count = 5000
	}
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Rate == 0 {
		o.Rate = 2000
	}
	if o.Warmup > 500 {
		o.Warmup = 500
	}
	var seeds []string
	if o.Remote != "" {
		addr, err := KafkaRemoteAddr(o.Remote, t.Name())
		if err != nil {
			return nil, err
		}
		seeds = []string{addr}
	} else {
		b, err := StartBroker(ctx, t, "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer b.Close()
		seeds = []string{b.Addr()}
	}
	dial := kgo.Dialer(func(ctx context.Context, _, host string) (net.Conn, error) { return t.Dial(ctx, host) })
	if ks, ok := t.(KafkaStack); ok {
		opt, closer, err := ks.KafkaDialer()
		if err != nil {
			return nil, fmt.Errorf("bench: %s kafka dialer: %w", t.Name(), err)
		}
		defer closer.Close()
		dial = opt
	}
	common := []kgo.Opt{kgo.SeedBrokers(seeds...), dial, kgo.RetryTimeout(10 * time.Second)}
	var out []Result
	r, err := kafkaPhase(ctx, t.Name(), "rate", common, o, false)
	out = append(out, r) // also when it failed: its counts say how
	if err != nil {
		return out, err
	}
	r, err = kafkaPhase(ctx, t.Name(), "max", common, o, true)
	return append(out, r), err
}

// KafkaPortOffset is added to a transport's port offset for the embedded
// broker that `bench serve` runs over it.
const KafkaPortOffset = 10

// KafkaRemoteAddr maps the base address of a `bench serve` server to the
// address of its broker over transport name.
func KafkaRemoteAddr(base, name string) (string, error) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("bench: remote address %q: %w", base, err)
	}
	addr, err := RemoteAddr(net.JoinHostPort(host, port), name)
	if err != nil {
		return "", err
	}
	h, p, _ := net.SplitHostPort(addr)
	var n int
	fmt.Sscan(p, &n)
	return net.JoinHostPort(h, fmt.Sprint(n+KafkaPortOffset)), nil
}

// KafkaStack is implemented by transports that carry Kafka through a
// product path of their own (raptor: compat/kafka's broker and dialer)
// rather than through their bare Listen and Dial.
type KafkaStack interface {
	// KafkaBroker starts an embedded broker reachable over the transport
	// on addr.
	KafkaBroker(ctx context.Context, addr string) (Server, error)
	// KafkaDialer returns the franz-go option that dials brokers over the
	// transport, and what to close after the client.
	KafkaDialer() (kgo.Opt, io.Closer, error)
}

// kfakeBroker is a one-broker kfake cluster listening on one transport.
type kfakeBroker struct {
	c *kfake.Cluster
}

// StartBroker starts an embedded Kafka-protocol broker over t on addr:
// t's own ([KafkaStack]) or a one-broker kfake cluster on t's listener.
// Each kafka run creates topics of its own on it.
func StartBroker(ctx context.Context, t Transport, addr string) (Server, error) {
	if ks, ok := t.(KafkaStack); ok {
		b, err := ks.KafkaBroker(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("bench: %s: embedded broker on %s: %w", t.Name(), addr, err)
		}
		return b, nil
	}
	listen := func(network, _ string) (net.Listener, error) { return t.Listen(ctx, addr) }
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(listen))
	if err != nil {
		return nil, fmt.Errorf("bench: %s: embedded broker on %s: %w", t.Name(), addr, err)
	}
	return &kfakeBroker{c: c}, nil
}

func (b *kfakeBroker) Addr() string { return b.c.ListenAddrs()[0] }

func (b *kfakeBroker) Close() error { b.c.Close(); return nil }

var topicSeq atomic.Uint64

func kafkaPhase(ctx context.Context, name, phase string, common []kgo.Opt, o Options, full bool) (Result, error) {
	phaseTimeout := o.Timeout
	if !full {
		phaseTimeout = max(o.Timeout, time.Duration(float64(o.Warmup+o.Count)/float64(o.Rate)*float64(time.Second))+15*time.Second)
	} else {
		phaseTimeout = max(o.Timeout, o.Duration+15*time.Second)
	}
	ctx, cancel := context.WithTimeout(ctx, phaseTimeout)
	defer cancel()
	res := Result{Suite: SuiteKafka, Transport: name, Size: o.Size}
	if full {
		res.Suite = SuiteKafkaMax
	}
	prod, err := kgo.NewClient(append(common, kgo.ProducerLinger(0), kgo.MaxBufferedRecords(10000))...)
	if err != nil {
		return res, fmt.Errorf("bench: %s kafka producer: %w", name, err)
	}
	defer prod.Close()
	// A topic of this run's own, so that a broker serving many runs (bench
	// serve) never hands the consumer an earlier run's records.
	topic := fmt.Sprintf("bench-%s-%d-%d", phase, time.Now().UnixNano(), topicSeq.Add(1))
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		return res, fmt.Errorf("bench: %s kafka: create topic %s: %w", name, topic, err)
	}
	cons, err := kgo.NewClient(append(common, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))...)
	if err != nil {
		return res, fmt.Errorf("bench: %s kafka consumer: %w", name, err)
	}
	defer cons.Close()

	base := time.Now()
	h := newHist()
	var (
		produced  atomic.Int64
		failed    atomic.Int64
		prodDone  atomic.Bool
		firstErr  error
		errOnce   sync.Once
		firstSent time.Duration // since base
		lastRecv  time.Duration
		measured  int64 // records past the warm-up consumed, first arrivals only
		lastMove  = time.Now()
	)
	warm := int64(o.Warmup)
	if full {
		warm = 0
	}
	limit := o.MaxMessages
	if !full {
		limit = o.Warmup + o.Count
	}
	count := NewSeqCount(limit + 1)
	poll := func(pctx context.Context) {
		fs := cons.PollFetches(pctx)
		now := time.Since(base)
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) < 16 {
				count.Add(^uint64(0)) // not one of ours: foreign
				return
			}
			sent := time.Duration(binary.BigEndian.Uint64(r.Value))
			seq := binary.BigEndian.Uint64(r.Value[8:])
			if !count.Add(seq) || int64(seq) < warm {
				return // a duplicate (counted), or warm-up
			}
			h.RecordValue(int64(max(now-sent, 1)))
			// The rate is measured from the first measured record's
			// production to the last one's consumption, so that a
			// stalled transport that delivers in one burst at the end
			// shows the rate it really sustained.
			if measured == 0 || sent < firstSent {
				firstSent = sent
			}
			lastRecv = now
			measured++
			lastMove = time.Now()
		})
	}
	// Done when every record acknowledged to the producer has arrived (a
	// record whose produce failed may or may not be in the log).
	done := func() bool {
		return prodDone.Load() && count.Unique() >= produced.Load()-failed.Load()
	}
	stalled := func() bool { return prodDone.Load() && time.Since(lastMove) > o.Stall }
	consDone := make(chan struct{})
	go func() {
		defer close(consDone)
		ConsumeUntil(ctx, poll, done, stalled, DrainGrace)
	}()

	bar := startProgress(o.Progress, fmt.Sprintf("%s %s %dB", res.Suite, name, o.Size), 1)
	before := sampleCost()
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			count.Failed(binary.BigEndian.Uint64(r.Value[8:]))
			failed.Add(1)
			errOnce.Do(func() { firstErr = err })
		}
	}
	produce := func(i int64) {
		v := make([]byte, o.Size)
		binary.BigEndian.PutUint64(v, uint64(time.Since(base)))
		binary.BigEndian.PutUint64(v[8:], uint64(i))
		if o.faults != nil && i == o.faults.drop {
			return // injected loss: counted as produced, never sent
		}
		prod.Produce(ctx, &kgo.Record{Topic: topic, Value: v}, promise)
	}
	stop := time.Now().Add(o.Duration)
	interval := time.Second / time.Duration(o.Rate)
	total := int64(o.Warmup + o.Count)
	start := time.Now()
	for i := int64(0); ctx.Err() == nil; i++ {
		if full {
			if i >= int64(o.MaxMessages) || (i&255 == 0 && time.Now().After(stop)) {
				break
			}
			if i&1023 == 0 {
				bar.set(time.Since(start).Seconds() / o.Duration.Seconds())
			}
		} else {
			if i >= total {
				break
			}
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d) // pacing of the offered rate, not synchronisation
			}
			bar.set(float64(i) / float64(total))
		}
		produced.Add(1)
		produce(i)
	}
	if o.faults != nil && o.faults.dup >= 0 && o.faults.dup < produced.Load() {
		produce(o.faults.dup) // injected duplicate, after the last record
	}
	prod.Flush(ctx)
	prodDone.Store(true)
	<-consDone
	bar.stop()
	after := sampleCost()

	n := produced.Load()
	res.Sent = n - warm
	res.Received = measured
	res.Duplicated = count.Duplicated()
	lost := count.Lost(uint64(warm), uint64(n))
	res.Elapsed = lastRecv - firstSent
	if firstErr != nil && measured == 0 {
		return res, fmt.Errorf("bench: %s kafka produce: %w", name, firstErr)
	}
	res.setCost(before, after)
	res.setPercentiles(h)
	if res.Sent > 0 {
		res.LossPct = 100 * float64(lost) / float64(res.Sent)
	}
	if res.Elapsed > 0 {
		res.MsgsPerS = float64(res.Received) / res.Elapsed.Seconds()
		res.MBPerS = res.MsgsPerS * float64(o.Size) / 1e6
	}
	if lost > 0 || res.Duplicated > 0 || count.Foreign() > 0 {
		return res, &CountError{Suite: res.Suite, Transport: name, Produced: res.Sent, Unique: count.UniqueIn(uint64(warm), uint64(n)),
			Lost: lost, Duplicated: res.Duplicated, Foreign: count.Foreign(), Failed: failed.Load(), TimedOut: ctx.Err() != nil, Bound: phaseTimeout}
	}
	return res, nil
}

// CountError reports a Kafka run whose consumer did not see every
// acknowledged record exactly once.
type CountError struct {
	Suite, Transport string
	// Produced is the number of measured records produced, Unique how many
	// distinct ones of them were consumed.
	Produced, Unique int64
	// Lost were acknowledged and never consumed; Duplicated consumed more
	// than once; Foreign consumed without being produced by this run;
	// Failed produced with an error (not counted as lost).
	Lost, Duplicated, Foreign, Failed int64
	// TimedOut is set when the phase reached its time bound Bound.
	TimedOut bool
	Bound    time.Duration
}

func (e *CountError) Error() string {
	s := fmt.Sprintf("bench: %s kafka %s: %d records produced, %d consumed once, %d lost, %d duplicated, %d foreign, %d produce errors",
		e.Transport, e.Suite, e.Produced, e.Unique, e.Lost, e.Duplicated, e.Foreign, e.Failed)
	if e.TimedOut {
		s += fmt.Sprintf(" (stopped by the %v bound)", e.Bound)
	}
	return s
}
