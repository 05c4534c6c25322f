package rafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/raptormq/raptor/compat/rafka/rafkapb"
)

// HeaderStart is the response header of an accepted Consume stream: the
// position of each partition the stream starts at, "topic/partition@offset"
// comma separated. Messages published after a client has the header are
// on the stream.
const HeaderStart = "raptor-rafka-start"

// Consume implements rafka.BrokerService: a push stream of the topic (or,
// with no topic, of the consumer's subscriptions). Each partition starts
// where the consumer's group (its ID) has committed, else at the end: a
// live tail. It runs until the client ends it or the bridge closes.
func (b *Bridge) Consume(req *rafkapb.ConsumeRequest, stream grpc.ServerStreamingServer[rafkapb.ConsumeResponse]) error {
	ctx := stream.Context()
	c, err := b.client("id", req.GetId())
	if err != nil {
		return err
	}
	topics := []string{req.GetTopic()}
	if req.GetTopic() == "" {
		c.mu.Lock()
		topics = slices.Clone(c.topics)
		c.mu.Unlock()
		if len(topics) == 0 {
			return &InvalidArgumentError{Field: "topic", Value: "", Reason: fmt.Sprintf("empty, and consumer %q has no subscription", c.id)}
		}
	}
	counts := map[string]int32{}
	for _, t := range topics {
		n, err := b.partitions(ctx, t, true)
		if err != nil {
			return err
		}
		counts[t] = n
	}
	if err := b.openStream(c); err != nil {
		return err
	}
	defer b.closeStream(c)
	start, err := b.startOffsets(ctx, c.id, counts)
	if err != nil {
		return err
	}
	opts := append(b.baseOptions(), kgo.ConsumePartitions(start))
	cl, err := kgo.NewClient(append(opts, b.cfg.ClientOptions...)...)
	if err != nil {
		return &BrokerError{Op: "consume", Topic: topics[0], Err: err}
	}
	defer cl.Close()
	b.streamsOpened.Add(1)
	b.active.Add(1)
	defer b.active.Add(-1)
	if err := stream.SendHeader(metadata.Pairs(HeaderStart, describeStart(start))); err != nil {
		return err
	}
	b.log.Debug("rafka: consume stream", "consumer", c.id, "start", describeStart(start))
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if fs.IsClientClosed() {
			return &BrokerError{Op: "consume", Topic: topics[0], Err: kgo.ErrClientClosed}
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				b.log.Warn("rafka: fetch", "consumer", c.id, "topic", t, "partition", p, "err", err)
			}
		})
		var sendErr error
		fs.EachRecord(func(r *kgo.Record) {
			if sendErr != nil {
				return
			}
			// Noted and counted before the send, so that both hold by the
			// time the client has the message.
			c.noteDelivery(b.cfg.RecentDeliveries, r.Topic, msgAddr{r.Partition, r.Offset})
			b.delivered.Add(1)
			if sendErr = stream.Send(toConsumeResponse(r)); sendErr != nil {
				b.delivered.Add(^uint64(0))
			}
		})
		if sendErr != nil {
			return sendErr
		}
	}
}

// toConsumeResponse maps a Kafka record to Rafka's message: the
// message_id names partition and offset, the value becomes the payload
// (EncodePayload), sent_at is the record's timestamp in seconds since the
// epoch, as Rafka's broker sends it.
func toConsumeResponse(r *kgo.Record) *rafkapb.ConsumeResponse {
	return &rafkapb.ConsumeResponse{
		MessageId: MessageID(r.Partition, r.Offset),
		Topic:     r.Topic,
		Payload:   EncodePayload(r.Value),
		SentAt:    r.Timestamp.Unix(),
		Offset:    r.Offset,
	}
}

// openStream takes a stream slot for c, which keeps c from eviction. A
// client evicted since its lookup is put back.
func (b *Bridge) openStream(c *client) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams >= b.cfg.MaxStreams {
		return &LimitError{What: "streams", Limit: b.cfg.MaxStreams}
	}
	if b.clients[c.id] == nil {
		if len(b.clients) >= b.cfg.MaxClients && !b.evictLocked() {
			return &LimitError{What: "clients with running streams", Limit: b.cfg.MaxClients}
		}
		b.clients[c.id] = c
	}
	b.streams++
	c.streams++
	return nil
}

func (b *Bridge) closeStream(c *client) {
	b.mu.Lock()
	b.streams--
	c.streams--
	b.mu.Unlock()
}

// startOffsets returns where a stream of group starts in each partition:
// the group's committed offset, else the partition's end offset now.
func (b *Bridge) startOffsets(ctx context.Context, group string, counts map[string]int32) (map[string]map[int32]kgo.Offset, error) {
	topics := make([]string, 0, len(counts))
	for t := range counts {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	committed, err := b.adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, b.brokerErr(ctx, "consume (committed offsets)", topics[0], fmt.Errorf("group %q: %w", group, err))
	}
	var ends kadm.ListedOffsets
	err = retryUnknownTopic(ctx, func() error {
		ends, err = b.adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
		return err
	})
	if err != nil {
		return nil, b.brokerErr(ctx, "consume (end offsets)", topics[0], err)
	}
	start := map[string]map[int32]kgo.Offset{}
	for _, t := range topics {
		start[t] = map[int32]kgo.Offset{}
		for p := int32(0); p < counts[t]; p++ {
			if o, ok := committed.Lookup(t, p); ok && o.Err == nil && o.At >= 0 {
				start[t][p] = kgo.NewOffset().At(o.At)
				continue
			}
			o, ok := ends.Lookup(t, p)
			if !ok {
				return nil, &BrokerError{Op: "consume (end offsets)", Topic: t, Err: fmt.Errorf("no end offset for partition %d", p)}
			}
			start[t][p] = kgo.NewOffset().At(o.Offset)
		}
	}
	return start, nil
}

func (b *Bridge) brokerErr(ctx context.Context, op, topic string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &BrokerError{Op: op, Topic: topic, Err: err}
}

// describeStart renders start as HeaderStart's value.
func describeStart(start map[string]map[int32]kgo.Offset) string {
	var parts []string
	for t, ps := range start {
		for p, o := range ps {
			parts = append(parts, fmt.Sprintf("%s/%d@%d", t, p, o.EpochOffset().Offset))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}
