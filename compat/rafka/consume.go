package rafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// member is one running Consume stream: a franz-go group consumer whose
// records the stream's handler pushes to the client.
type member struct {
	c        *consumer
	group    string
	cl       *kgo.Client // set before the member joins groupState.members
	cancel   context.CancelFunc
	done     chan struct{} // closed when the stream has left the group
	replaced atomic.Bool

	mu    sync.Mutex
	seeks []*seekReq
	wake  context.CancelFunc // ends the current poll
}

type seekReq struct {
	tp      topicPartition
	offset  int64
	applied chan struct{}
}

// commit commits next for tp as this group member.
func (m *member) commit(ctx context.Context, tp topicPartition, next int64) error {
	var cerr error
	m.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{tp.topic: {tp.part: {Epoch: -1, Offset: next}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			cerr = commitResult(resp, err)
		})
	return cerr
}

// seek asks the stream's loop to continue tp from offset, and waits until
// it has (or the stream or ctx ends). Messages of tp the loop holds but
// has not sent are dropped.
func (m *member) seek(ctx context.Context, tp topicPartition, offset int64) error {
	s := &seekReq{tp: tp, offset: offset, applied: make(chan struct{})}
	m.mu.Lock()
	m.seeks = append(m.seeks, s)
	wake := m.wake
	m.mu.Unlock()
	if wake != nil {
		wake()
	}
	select {
	case <-s.applied:
	case <-m.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// takeSeeks applies pending seeks to the consumer and returns the
// partitions they moved.
func (m *member) takeSeeks() map[topicPartition]bool {
	m.mu.Lock()
	seeks := m.seeks
	m.seeks = nil
	m.mu.Unlock()
	if len(seeks) == 0 {
		return nil
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	moved := map[topicPartition]bool{}
	for _, s := range seeks {
		if set[s.tp.topic] == nil {
			set[s.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		set[s.tp.topic][s.tp.part] = kgo.EpochOffset{Epoch: -1, Offset: s.offset}
		moved[s.tp] = true
	}
	m.cl.SetOffsets(set) // skips partitions this member does not own
	for _, s := range seeks {
		close(s.applied)
	}
	return moved
}

// Consume implements BrokerServiceServer: the consumer's stream joins the
// Kafka consumer group, and the records of the partitions the group
// assigns it are pushed until the client ends the stream, a newer Consume
// of the same consumer replaces it, or the bridge closes.
func (b *Bridge) Consume(req *ConsumeRequest, stream grpc.ServerStreamingServer[ConsumeResponse]) error {
	rpcCtx := stream.Context()
	ctx, done, err := b.enter(rpcCtx)
	if err != nil {
		return err
	}
	defer done()
	c, err := b.lookup(req.ConsumerID)
	if err != nil {
		return err
	}
	b.mu.Lock()
	group := c.group
	topics := slices.Clone(c.topics)
	b.mu.Unlock()
	if req.Group != "" {
		group = req.Group
	}
	if req.Topic != "" {
		topics = []string{req.Topic}
	}
	if len(topics) == 0 {
		return &InvalidArgumentError{Field: "topic", Value: "", Reason: fmt.Sprintf("consumer %q has no subscription: name a topic or Subscribe", c.id)}
	}
	for _, t := range topics {
		if _, err := b.partitions(ctx, t, false); err != nil {
			return b.exit(err)
		}
	}
	var reset kgo.Offset
	switch o := req.StartOffset; {
	case o == 0 || o == StartEarliest:
		reset = kgo.NewOffset().AtStart()
	case o == StartLatest:
		reset = kgo.NewOffset().AtEnd()
	case o > 0:
		reset = kgo.NewOffset().At(o)
	default:
		return &InvalidArgumentError{Field: "start_offset", Value: fmt.Sprint(o), Reason: "want an offset >= 0, StartEarliest (-2) or StartLatest (-1)"}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := &member{c: c, group: group, cancel: cancel, done: make(chan struct{})}
	defer close(m.done)
	if err := b.takeOver(ctx, m); err != nil {
		return b.exit(err)
	}
	defer b.release(m)

	opts := append(b.baseOptions(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(reset),
	)
	cl, err := kgo.NewClient(append(opts, b.cfg.ClientOptions...)...)
	if err != nil {
		return &BrokerError{Op: "consume", Topic: topics[0], Err: err}
	}
	defer cl.Close() // leaves the group: its partitions go to the others
	m.cl = cl
	if err := b.join(m); err != nil {
		return err
	}
	// Counted before the header, so that a client holding the header sees
	// its stream in GetMetrics.
	b.streamsOpened.Add(1)
	b.activeStreams.Add(1)
	defer b.activeStreams.Add(^uint64(0))
	if err := stream.SendHeader(metadata.Pairs(headerConsumerID, c.id, "rafka-group", group)); err != nil {
		return err
	}
	b.log.Debug("rafka: consume stream", "consumer", c.id, "group", group, "topics", topics)

	err = b.push(ctx, m, stream)
	switch {
	case m.replaced.Load():
		return &StreamReplacedError{ConsumerID: c.id}
	case b.ctx.Err() != nil:
		return ErrBridgeClosed
	case rpcCtx.Err() != nil:
		return rpcCtx.Err()
	}
	return err
}

// takeOver makes m the consumer's running stream, ending a previous one
// and waiting until it has left the group.
func (b *Bridge) takeOver(ctx context.Context, m *member) error {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return ErrBridgeClosed
		}
		prev := m.c.active
		if prev == nil {
			m.c.active = m
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
		prev.replaced.Store(true)
		prev.cancel()
		select {
		case <-prev.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// join adds m to its group's running streams, for commits.
func (b *Bridge) join(m *member) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	gs, err := b.groupStateLocked(m.group)
	if err != nil {
		return err
	}
	gs.members[m] = struct{}{}
	return nil
}

// release undoes takeOver and join.
func (b *Bridge) release(m *member) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.c.active == m {
		m.c.active = nil
	}
	if gs := b.groups[m.group]; gs != nil {
		delete(gs.members, m)
	}
}

// push polls records and sends them until ctx ends or sending fails.
func (b *Bridge) push(ctx context.Context, m *member, stream grpc.ServerStreamingServer[ConsumeResponse]) error {
	for ctx.Err() == nil {
		pollCtx, wake := context.WithCancel(ctx)
		m.mu.Lock()
		m.wake = wake
		pending := len(m.seeks) > 0
		m.mu.Unlock()
		if pending {
			wake() // apply the seek without waiting for records
		}
		fs := m.cl.PollRecords(pollCtx, b.cfg.MaxBatch)
		wake()
		if fs.IsClientClosed() {
			return &BrokerError{Op: "consume", Topic: m.c.id, Err: kgo.ErrClientClosed}
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				b.log.Warn("rafka: fetch", "group", m.group, "topic", t, "partition", p, "err", err)
			}
		})
		recs := fs.Records()
		if moved := m.takeSeeks(); moved != nil {
			kept := recs[:0]
			for _, r := range recs {
				if !moved[topicPartition{r.Topic, r.Partition}] {
					kept = append(kept, r)
				}
			}
			recs = kept
		}
		if err := b.send(stream, recs); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// send pushes recs in ConsumeResponses bounded by MaxBatchBytes.
func (b *Bridge) send(stream grpc.ServerStreamingServer[ConsumeResponse], recs []*kgo.Record) error {
	for len(recs) > 0 {
		var resp ConsumeResponse
		size := 0
		for len(recs) > 0 {
			r := recs[0]
			n := len(r.Key) + len(r.Value)
			if len(resp.Messages) > 0 && size+n > b.cfg.MaxBatchBytes {
				break
			}
			size += n
			resp.Messages = append(resp.Messages, toMessage(r))
			recs = recs[1:]
		}
		if err := stream.Send(&resp); err != nil {
			return err
		}
		b.delivered.Add(uint64(len(resp.Messages)))
	}
	return nil
}

func toMessage(r *kgo.Record) Message {
	m := Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp.UnixMilli()}
	if len(r.Headers) > 0 {
		m.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			m.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}
