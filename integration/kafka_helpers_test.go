package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/internal/benchkit"
	"github.com/raptormq/raptor/internal/impair"
	"github.com/raptormq/raptor/internal/udpio"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// kxWorkload is one produce-and-consume run: records numbered 0..N-1, record
// i to partition i%Partitions, consumed by a consumer group and checked for
// exactly-once delivery and per-partition order.
type kxWorkload struct {
	Seed       string    // bootstrap broker host:port
	Topic      string    // existing topic with Partitions partitions
	Partitions int       // partitions of Topic
	N          int       // records
	Opts       []kgo.Opt // extra options for both clients (the dialer)
	// OnConsumed, if set, is called from the consumer loop with the count
	// of distinct records consumed so far after each poll.
	OnConsumed func(n int)
	// OnAck, if set, is called for every successful produce acknowledgement.
	OnAck func()
	// Stall, if set, ends consumption when no new record arrived for this
	// long after the producer finished (default: wait until ctx ends).
	Stall time.Duration
	// Faults, if set, makes the producer lose or repeat a record, so that
	// a test sees the counting report it.
	Faults *kxFaults
}

// kxFaults: record Drop is never produced; record Dup is produced once more
// after the last one. -1 is none.
type kxFaults struct{ Drop, Dup int }

// kxResult is what a workload saw.
type kxResult struct {
	Received, Duplicates, OutOfOrder, ProduceErrors int
	// Lost is the records acknowledged to the producer and never consumed.
	Lost int
	// Redelivered counts records consumed again at the same offset (a
	// consumer-side replay, not a duplicate in the log).
	Redelivered     int
	FirstProduceErr error
	Elapsed         time.Duration
}

// run produces and consumes concurrently and returns when every record has
// been consumed or ctx ends.
func (w kxWorkload) run(t *testing.T, ctx context.Context) kxResult {
	t.Helper()
	group := fmt.Sprintf("kx-%s-%d", w.Topic, time.Now().UnixNano())
	cons, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(w.Seed),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(w.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, w.Opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(w.Seed),
		kgo.DefaultProduceTopic(w.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}, w.Opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	var res kxResult
	var prodErrs atomic.Int64
	var firstErr atomic.Pointer[error]
	var prodDone atomic.Bool
	count := benchkit.NewSeqCount(w.N)
	start := time.Now()
	go func() {
		defer prodDone.Store(true)
		produce := func(i int) {
			v := binary.BigEndian.AppendUint64(make([]byte, 0, 64), uint64(i))
			v = append(v, make([]byte, 56)...)
			prod.Produce(ctx, &kgo.Record{Partition: int32(i % w.Partitions), Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					count.Failed(uint64(i))
					if prodErrs.Add(1) == 1 {
						firstErr.Store(&err)
					}
					return
				}
				if w.OnAck != nil {
					w.OnAck()
				}
			})
		}
		for i := 0; i < w.N && ctx.Err() == nil; i++ {
			if w.Faults != nil && i == w.Faults.Drop {
				continue
			}
			produce(i)
		}
		if w.Faults != nil && w.Faults.Dup >= 0 && w.Faults.Dup < w.N {
			produce(w.Faults.Dup)
		}
		prod.Flush(ctx)
	}()
	offsets := make([]int64, w.N) // offset+1 of each record seen, 0 if not yet
	last := make([]int64, w.Partitions)
	for i := range last {
		last[i] = -1
	}
	lastMove := time.Now()
	poll := func(pctx context.Context) {
		fs := cons.PollFetches(pctx)
		fs.EachError(func(topic string, p int32, err error) {
			if pctx.Err() == nil {
				t.Logf("fetch error %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			seq := int64(binary.BigEndian.Uint64(r.Value))
			if seq < 0 || seq >= int64(w.N) || int(r.Partition) >= w.Partitions {
				t.Errorf("record %d in partition %d out of range", seq, r.Partition)
				return
			}
			if o := offsets[seq]; o != 0 {
				if o == r.Offset+1 {
					res.Redelivered++ // a consumer-side replay of the same offset
				} else {
					res.Duplicates++ // the same record twice in the log
					count.Add(uint64(seq))
				}
				return
			}
			offsets[seq] = r.Offset + 1
			count.Add(uint64(seq))
			res.Received++
			lastMove = time.Now()
			if seq%int64(w.Partitions) != int64(r.Partition) {
				t.Errorf("record %d in partition %d", seq, r.Partition)
			}
			if seq < last[r.Partition] {
				res.OutOfOrder++
			}
			last[r.Partition] = seq
		})
		if w.OnConsumed != nil {
			w.OnConsumed(res.Received)
		}
	}
	// Every acknowledged record consumed, then a short drain so that a
	// duplicate arriving after the last new record is counted too.
	done := func() bool {
		return res.Received >= w.N || (prodDone.Load() && int64(res.Received) >= int64(w.N)-prodErrs.Load())
	}
	stalled := func() bool {
		return w.Stall > 0 && prodDone.Load() && time.Since(lastMove) > w.Stall
	}
	benchkit.ConsumeUntil(ctx, poll, done, stalled, benchkit.DrainGrace)
	res.Lost = int(count.Lost(0, uint64(w.N)))
	res.Elapsed = time.Since(start)
	res.ProduceErrors = int(prodErrs.Load())
	if p := firstErr.Load(); p != nil {
		res.FirstProduceErr = *p
	}
	return res
}

// check fails the test unless every record arrived once and in order.
func (r kxResult) check(t *testing.T, n int) {
	t.Helper()
	if r.Received != n || r.Lost != 0 || r.Duplicates != 0 || r.OutOfOrder != 0 || r.ProduceErrors != 0 {
		t.Fatalf("received %d of %d, %d lost, %d duplicates, %d out of order, %d produce errors (first: %v)",
			r.Received, n, r.Lost, r.Duplicates, r.OutOfOrder, r.ProduceErrors, r.FirstProduceErr)
	}
	t.Logf("%d records exactly once and in order per partition in %v (%.0f records/s); %d consumer redeliveries",
		n, r.Elapsed.Round(time.Millisecond), float64(n)/r.Elapsed.Seconds(), r.Redelivered)
}

// kxLossy returns a plugin.PacketConnFunc giving kernel UDP conns that drop
// pct percent of sent datagrams, and a function summing what they dropped.
func kxLossy(t *testing.T, pct float64, seed int64) (plugin.PacketConnFunc, func() (sent, dropped uint64)) {
	var mu sync.Mutex
	var conns []*impair.Conn
	var n atomic.Int64
	t.Logf("loss %.1f%% each way, seed %d", pct, seed)
	open := func(laddr string) (reliable.PacketConn, error) {
		c, err := udpio.Listen(laddr)
		if err != nil {
			return nil, err
		}
		ic := impair.Wrap(c, impair.Config{Seed: seed + n.Add(1), SendLoss: pct / 100})
		mu.Lock()
		conns = append(conns, ic)
		mu.Unlock()
		return ic, nil
	}
	stats := func() (sent, dropped uint64) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			s := c.Stats()
			sent += s.Sent + s.SendLost
			dropped += s.SendLost
		}
		return
	}
	return open, stats
}

// kxForwarder is a TCP forwarder to upstream whose listener can be closed
// (new connections refused) while forwarded connections keep working.
type kxForwarder struct {
	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex
	cs []net.Conn
}

func newKxForwarder(t *testing.T, upstream string) *kxForwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &kxForwarder{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.cs = append(f.cs, c, u)
			f.mu.Unlock()
			f.wg.Add(2)
			go func() { defer f.wg.Done(); io.Copy(u, c); u.Close() }()
			go func() { defer f.wg.Done(); io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(f.Close)
	return f
}

func (f *kxForwarder) Addr() string { return f.ln.Addr().String() }

// StopAccepting refuses new connections; forwarded ones continue.
func (f *kxForwarder) StopAccepting() { f.ln.Close() }

// Close ends everything.
func (f *kxForwarder) Close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.cs {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// kxServe runs r.Serve(ln) and closes r when the test ends.
func kxServe(t *testing.T, r *plugin.Relay, ln net.Listener) {
	done := make(chan struct{})
	go func() { defer close(done); r.Serve(ln) }()
	t.Cleanup(func() { r.Close(); <-done })
}

// kxRecords is the record count of the long runs (100,000 also under -race:
// a run takes a few seconds on two cores).
const kxRecords = 100000
