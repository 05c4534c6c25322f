package rafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc"
)

// Config configures a [Bridge]. Zero values mean the documented defaults.
type Config struct {
	// Brokers are the seed brokers (host:port) of the Kafka-protocol
	// cluster the bridge stores into. Required.
	Brokers []string
	// Dial opens the bridge's connections to the brokers. Default: TCP.
	// Over Raptor, pass a compat/kafka Dialer's DialContext.
	Dial func(ctx context.Context, network, host string) (net.Conn, error)
	// ClientOptions are added to every franz-go client the bridge makes
	// (its producer and one consumer per Consume stream), after its own.
	ClientOptions []kgo.Opt
	// MaxBatch is the most messages pushed in one ConsumeResponse.
	// Default 500.
	MaxBatch int
	// MaxBatchBytes bounds the key and value bytes of one ConsumeResponse
	// (a single larger message still goes alone; gRPC clients accept 4 MiB
	// messages by default). Default 1 MiB.
	MaxBatchBytes int
	// MaxConsumers bounds registered consumers. Default 10,000.
	MaxConsumers int
	// MaxGroups bounds the groups the bridge tracks (for acknowledgement
	// ordering and running streams). Default 10,000.
	MaxGroups int
	// Logger receives bridge events. Default: discard.
	Logger *slog.Logger
}

func (c Config) populate() (Config, error) {
	if len(c.Brokers) == 0 {
		return c, errors.New("rafka: Config.Brokers is empty: name at least one broker host:port")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return c, fmt.Errorf("rafka: broker address %q is not host:port: %w", b, err)
		}
	}
	for _, v := range []struct {
		name string
		n    *int
		def  int
	}{{"MaxBatch", &c.MaxBatch, 500}, {"MaxBatchBytes", &c.MaxBatchBytes, 1 << 20}, {"MaxConsumers", &c.MaxConsumers, 10000}, {"MaxGroups", &c.MaxGroups, 10000}} {
		switch {
		case *v.n == 0:
			*v.n = v.def
		case *v.n < 0:
			return c, fmt.Errorf("rafka: Config.%s is %d, must not be negative", v.name, *v.n)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// headerConsumerID is the response header of an accepted Consume stream.
const headerConsumerID = "rafka-consumer-id"

// Bridge serves rafka.BrokerService by storing into a Kafka-protocol
// broker through franz-go: Publish produces (idempotently, acks=all),
// each Consume stream is a member of a Kafka consumer group (the broker
// assigns partitions among a group's streams), Acknowledge and
// UpdateOffset commit the group's offsets. Register it on a grpc.Server
// that serves a Raptor listener (or any other). See docs/RAFKA.md.
type Bridge struct {
	cfg  Config
	log  *slog.Logger
	prod *kgo.Client
	adm  *kadm.Client

	ctx    context.Context // cancelled by Close: ends every stream
	cancel context.CancelFunc
	wg     sync.WaitGroup // calls in progress

	mu        sync.Mutex
	closed    bool
	topics    map[string]int32 // partition counts of topics seen to exist
	consumers map[string]*consumer
	groups    map[string]*groupState
	nextID    uint64

	published, publishErrors, delivered, acked, offsetUpdates atomic.Uint64
	registered, streamsOpened, activeStreams                  atomic.Uint64
}

var _ BrokerServiceServer = (*Bridge)(nil)

// consumer is a registered consumer. Fields are guarded by Bridge.mu.
type consumer struct {
	id     string
	group  string
	topics []string // sorted
	active *member  // its running Consume stream
}

// groupState is what the bridge knows of one consumer group.
type groupState struct {
	commitMu  sync.Mutex               // serialises commits of the group
	committed map[topicPartition]int64 // last offset committed here; guarded by commitMu
	members   map[*member]struct{}     // running streams; guarded by Bridge.mu
}

type topicPartition struct {
	topic string
	part  int32
}

// NewBridge connects a bridge to the brokers in cfg. Close it after the
// grpc.Server it is registered on has stopped, or before, which ends its
// streams.
func NewBridge(cfg Config) (*Bridge, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	b := &Bridge{
		cfg: c, log: c.Logger,
		topics: map[string]int32{}, consumers: map[string]*consumer{}, groups: map[string]*groupState{},
	}
	opts := append(b.baseOptions(), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
	b.prod, err = kgo.NewClient(append(opts, c.ClientOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("rafka: producer for brokers %v: %w", c.Brokers, err)
	}
	b.adm = kadm.NewClient(b.prod)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

func (b *Bridge) baseOptions() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(b.cfg.Brokers...)}
	if b.cfg.Dial != nil {
		opts = append(opts, kgo.Dialer(b.cfg.Dial))
	}
	return opts
}

// RegisterOn registers the bridge's service on s (a *grpc.Server).
func (b *Bridge) RegisterOn(s grpc.ServiceRegistrar) { RegisterBrokerServiceServer(s, b) }

// Close ends every Consume stream (with ErrBridgeClosed), waits for the
// calls in progress and closes the bridge's franz-go clients. Later calls
// fail with ErrBridgeClosed. A stream blocked sending to a client that
// stopped reading ends when the grpc.Server stops. Close is idempotent.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
	b.prod.Close()
	return nil
}

// enter counts a call in and returns its context, which Close also
// cancels; call done when the call ends. It fails once the bridge is
// closed.
func (b *Bridge) enter(ctx context.Context) (context.Context, func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, ErrBridgeClosed
	}
	b.wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		b.wg.Done()
	}, nil
}

// exit maps the error of a call that Close interrupted to ErrBridgeClosed.
func (b *Bridge) exit(err error) error {
	if err != nil && b.ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)) {
		return ErrBridgeClosed
	}
	return err
}

// partitions returns the partition count of topic, asking the broker when
// the topic is not known yet.
func (b *Bridge) partitions(ctx context.Context, topic string, refresh bool) (int32, error) {
	if topic == "" {
		return 0, &InvalidArgumentError{Field: "topic", Value: topic, Reason: "empty"}
	}
	b.mu.Lock()
	n, ok := b.topics[topic]
	b.mu.Unlock()
	if ok && !refresh {
		return n, nil
	}
	tds, err := b.adm.ListTopics(ctx, topic)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, &BrokerError{Op: "metadata", Topic: topic, Err: err}
	}
	td, ok := tds[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		b.forgetTopic(topic)
		return 0, &UnknownTopicError{Topic: topic}
	}
	if td.Err != nil {
		return 0, &BrokerError{Op: "metadata", Topic: topic, Err: td.Err}
	}
	n = int32(len(td.Partitions))
	b.mu.Lock()
	b.topics[topic] = n
	b.mu.Unlock()
	return n, nil
}

func (b *Bridge) forgetTopic(topic string) {
	b.mu.Lock()
	delete(b.topics, topic)
	b.mu.Unlock()
}

// checkPartition fails unless topic has partition p.
func (b *Bridge) checkPartition(ctx context.Context, topic string, p int32) error {
	n, err := b.partitions(ctx, topic, false)
	if err != nil {
		return err
	}
	if p >= 0 && p < n {
		return nil
	}
	if n, err = b.partitions(ctx, topic, true); err != nil { // partitions may have been added
		return err
	}
	if p < 0 || p >= n {
		return &UnknownPartitionError{Topic: topic, Partition: p, Partitions: n}
	}
	return nil
}

// Publish implements BrokerServiceServer: one idempotent produce, acks=all.
func (b *Bridge) Publish(ctx context.Context, req *PublishRequest) (_ *PublishResponse, err error) {
	ctx, done, err := b.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	defer func() { err = b.exit(err) }()
	resp, err := b.publish(ctx, req)
	if err != nil {
		b.publishErrors.Add(1)
		return nil, err
	}
	b.published.Add(1)
	return resp, nil
}

func (b *Bridge) publish(ctx context.Context, req *PublishRequest) (*PublishResponse, error) {
	if _, err := b.partitions(ctx, req.Topic, false); err != nil {
		return nil, err
	}
	rec := &kgo.Record{Topic: req.Topic, Key: req.Key, Value: req.Value}
	if len(req.Headers) > 0 {
		rec.Headers = make([]kgo.RecordHeader, len(req.Headers))
		for i, h := range req.Headers {
			rec.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	r, err := b.prod.ProduceSync(ctx, rec).First()
	switch {
	case err == nil:
		return &PublishResponse{Partition: r.Partition, Offset: r.Offset}, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		b.forgetTopic(req.Topic)
		return nil, &UnknownTopicError{Topic: req.Topic}
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return nil, &InvalidArgumentError{Field: "value", Value: fmt.Sprintf("%d bytes", len(req.Key)+len(req.Value)), Reason: err.Error()}
	}
	return nil, &BrokerError{Op: "publish", Topic: req.Topic, Err: err}
}

// Register implements BrokerServiceServer.
func (b *Bridge) Register(ctx context.Context, req *RegisterRequest) (_ *RegisterResponse, err error) {
	ctx, done, err := b.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	defer func() { err = b.exit(err) }()
	if len(req.ClientID) > 249 {
		return nil, &InvalidArgumentError{Field: "client_id", Value: req.ClientID, Reason: "longer than 249 bytes"}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	id := req.ClientID
	if id == "" {
		b.nextID++
		id = fmt.Sprintf("consumer-%d", b.nextID)
	}
	c := b.consumers[id]
	if c == nil {
		if len(b.consumers) >= b.cfg.MaxConsumers {
			return nil, &LimitError{What: "consumers", Limit: b.cfg.MaxConsumers}
		}
		c = &consumer{id: id, group: id}
		b.consumers[id] = c
	}
	if req.Group != "" {
		c.group = req.Group // a running stream keeps the group it started with
	}
	b.registered.Add(1)
	return &RegisterResponse{ConsumerID: id, Group: c.group}, nil
}

// Subscribe implements BrokerServiceServer.
func (b *Bridge) Subscribe(ctx context.Context, req *SubscribeRequest) (_ *SubscribeResponse, err error) {
	ctx, done, err := b.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	defer func() { err = b.exit(err) }()
	if _, err := b.lookup(req.ConsumerID); err != nil {
		return nil, err
	}
	if len(req.Topics) == 0 {
		return nil, &InvalidArgumentError{Field: "topics", Value: "", Reason: "no topic to subscribe to"}
	}
	for _, t := range req.Topics {
		if _, err := b.partitions(ctx, t, false); err != nil {
			return nil, err
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consumers[req.ConsumerID]
	for _, t := range req.Topics {
		if i, found := slices.BinarySearch(c.topics, t); !found {
			c.topics = slices.Insert(c.topics, i, t)
		}
	}
	return &SubscribeResponse{Topics: slices.Clone(c.topics)}, nil
}

// lookup returns the registered consumer id.
func (b *Bridge) lookup(id string) (*consumer, error) {
	if id == "" {
		return nil, &InvalidArgumentError{Field: "consumer_id", Value: id, Reason: "empty (call Register first)"}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.consumers[id]
	if c == nil {
		return nil, &UnknownConsumerError{ConsumerID: id}
	}
	return c, nil
}

// groupOf resolves the group of an Acknowledge or UpdateOffset.
func (b *Bridge) groupOf(consumerID, group string) (string, error) {
	if group != "" {
		return group, nil
	}
	if consumerID == "" {
		return "", &InvalidArgumentError{Field: "group", Value: "", Reason: "name a group or a registered consumer_id"}
	}
	c, err := b.lookup(consumerID)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return c.group, nil
}

// groupStateLocked returns the state of group, creating it.
func (b *Bridge) groupStateLocked(group string) (*groupState, error) {
	gs := b.groups[group]
	if gs == nil {
		if len(b.groups) >= b.cfg.MaxGroups {
			return nil, &LimitError{What: "groups", Limit: b.cfg.MaxGroups}
		}
		gs = &groupState{committed: map[topicPartition]int64{}, members: map[*member]struct{}{}}
		b.groups[group] = gs
	}
	return gs, nil
}

// Acknowledge implements BrokerServiceServer: commits Offset+1, never
// backwards.
func (b *Bridge) Acknowledge(ctx context.Context, req *AcknowledgeRequest) (_ *AcknowledgeResponse, err error) {
	ctx, done, err := b.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	defer func() { err = b.exit(err) }()
	if req.Offset < 0 {
		return nil, &InvalidArgumentError{Field: "offset", Value: fmt.Sprint(req.Offset), Reason: "negative"}
	}
	group, err := b.groupOf(req.ConsumerID, req.Group)
	if err != nil {
		return nil, err
	}
	if err := b.checkPartition(ctx, req.Topic, req.Partition); err != nil {
		return nil, err
	}
	committed, err := b.commit(ctx, group, req.ConsumerID, topicPartition{req.Topic, req.Partition}, req.Offset+1, false)
	if err != nil {
		return nil, err
	}
	b.acked.Add(1)
	return &AcknowledgeResponse{Committed: committed}, nil
}

// UpdateOffset implements BrokerServiceServer: commits Offset (also
// backwards) and moves the running stream that owns the partition.
func (b *Bridge) UpdateOffset(ctx context.Context, req *UpdateOffsetRequest) (_ *UpdateOffsetResponse, err error) {
	ctx, done, err := b.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	defer func() { err = b.exit(err) }()
	if req.Offset < 0 {
		return nil, &InvalidArgumentError{Field: "offset", Value: fmt.Sprint(req.Offset), Reason: "negative"}
	}
	group, err := b.groupOf(req.ConsumerID, req.Group)
	if err != nil {
		return nil, err
	}
	tp := topicPartition{req.Topic, req.Partition}
	if err := b.checkPartition(ctx, tp.topic, tp.part); err != nil {
		return nil, err
	}
	committed, err := b.commit(ctx, group, req.ConsumerID, tp, req.Offset, true)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	var ms []*member
	if gs := b.groups[group]; gs != nil {
		for m := range gs.members {
			ms = append(ms, m)
		}
	}
	b.mu.Unlock()
	for _, m := range ms {
		if err := m.seek(ctx, tp, req.Offset); err != nil {
			return nil, err
		}
	}
	b.offsetUpdates.Add(1)
	return &UpdateOffsetResponse{Committed: committed}, nil
}

// commit commits next as group's offset of tp: through a running stream of
// the group (Kafka accepts commits from members only while a group has
// members), else as a simple commit. Unless force, an offset not above the
// last one committed here is a no-op.
func (b *Bridge) commit(ctx context.Context, group, consumerID string, tp topicPartition, next int64, force bool) (int64, error) {
	b.mu.Lock()
	gs, err := b.groupStateLocked(group)
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	gs.commitMu.Lock()
	defer gs.commitMu.Unlock()
	if last, ok := gs.committed[tp]; ok && !force && next <= last {
		return last, nil
	}
	const attempts = 6
	for i := 1; ; i++ {
		var err error
		if m := b.pickMember(gs, consumerID); m != nil {
			err = m.commit(ctx, tp, next)
		} else {
			err = b.simpleCommit(ctx, group, tp, next)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if i == attempts {
			return 0, &BrokerError{Op: "commit", Topic: tp.topic, Err: fmt.Errorf("group %q partition %d offset %d: %w", group, tp.part, next, err)}
		}
		// Membership is changing (a stream joining or leaving): retry
		// through whoever is a member now.
		b.log.Debug("rafka: commit retry", "group", group, "topic", tp.topic, "partition", tp.part, "err", err)
		t := time.NewTimer(time.Duration(i) * 10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		}
	}
	gs.committed[tp] = next
	return next, nil
}

// pickMember returns a running stream of the group that has joined it,
// preferring the consumer's own.
func (b *Bridge) pickMember(gs *groupState, consumerID string) *member {
	b.mu.Lock()
	defer b.mu.Unlock()
	var pick *member
	for m := range gs.members {
		if id, _ := m.cl.GroupMetadata(); id == "" {
			continue
		}
		if pick == nil || m.c.id == consumerID {
			pick = m
		}
	}
	return pick
}

// simpleCommit commits outside group membership (generation -1), which
// Kafka accepts while the group has no members.
func (b *Bridge) simpleCommit(ctx context.Context, group string, tp topicPartition, next int64) error {
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: tp.topic, Partition: tp.part, At: next, LeaderEpoch: -1})
	resp, err := b.adm.CommitOffsets(ctx, group, os)
	if err != nil {
		return err
	}
	return resp.Error()
}

// GetMetrics implements BrokerServiceServer.
func (b *Bridge) GetMetrics(ctx context.Context, _ *GetMetricsRequest) (_ *GetMetricsResponse, err error) {
	ctx, done, err := b.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	defer func() { err = b.exit(err) }()
	return b.Metrics(), nil
}

// Metrics returns the bridge's counters (what GetMetrics answers).
func (b *Bridge) Metrics() *GetMetricsResponse {
	b.mu.Lock()
	consumers := len(b.consumers)
	b.mu.Unlock()
	return &GetMetricsResponse{
		Published:     b.published.Load(),
		PublishErrors: b.publishErrors.Load(),
		Delivered:     b.delivered.Load(),
		Acknowledged:  b.acked.Load(),
		OffsetUpdates: b.offsetUpdates.Load(),
		Registered:    b.registered.Load(),
		Consumers:     uint64(consumers),
		StreamsOpened: b.streamsOpened.Load(),
		ActiveStreams: b.activeStreams.Load(),
	}
}

// commitResult reads the first error of an OffsetCommit response.
func commitResult(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}
