package rafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"

	"github.com/raptormq/raptor/compat/rafka/rafkapb"
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
	// CreateTopics makes Publish, Subscribe and Consume create a topic
	// that does not exist yet, as Rafka's broker does. Default false: an
	// unknown topic is an [UnknownTopicError].
	CreateTopics bool
	// TopicPartitions is the partition count of topics the bridge
	// creates. Default -1: the broker's default.
	TopicPartitions int32
	// MaxClients bounds the client IDs the bridge keeps state for
	// (registered, subscribed, consuming or committing). When it is
	// reached, the least recently used client without a running stream is
	// forgotten (its subscriptions and recent deliveries; its commits are
	// in Kafka). Default 10,000.
	MaxClients int
	// MaxStreams bounds concurrent Consume streams. Default 1,024.
	MaxStreams int
	// RecentDeliveries is how many of its latest deliveries the bridge
	// remembers per consumer, to find the partition an UpdateOffset means
	// (docs/RAFKA.md, "Offsets"). Default 4,096.
	RecentDeliveries int
	// CallTimeout bounds each unary call (not Consume streams) when the
	// client gives no earlier deadline: a Kafka cluster that does not answer
	// in time fails the call with a BrokerError (success=false), as Rafka's
	// clients expect, instead of holding it. Default 30s.
	CallTimeout time.Duration
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
	}{{"MaxClients", &c.MaxClients, 10000}, {"MaxStreams", &c.MaxStreams, 1024}, {"RecentDeliveries", &c.RecentDeliveries, 4096}} {
		switch {
		case *v.n == 0:
			*v.n = v.def
		case *v.n < 0:
			return c, fmt.Errorf("rafka: Config.%s is %d, must not be negative", v.name, *v.n)
		}
	}
	switch {
	case c.TopicPartitions == 0:
		c.TopicPartitions = -1
	case c.TopicPartitions < -1:
		return c, fmt.Errorf("rafka: Config.TopicPartitions is %d: want a count or -1 for the broker's default", c.TopicPartitions)
	}
	switch {
	case c.CallTimeout == 0:
		c.CallTimeout = 30 * time.Second
	case c.CallTimeout < 0:
		return c, fmt.Errorf("rafka: Config.CallTimeout is %v, must not be negative", c.CallTimeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Stats are a bridge's counters (what it did; GetMetrics answers what the
// Kafka cluster holds).
type Stats struct {
	Published     uint64 // Publish calls stored
	Delivered     uint64 // messages pushed on Consume streams
	Acknowledged  uint64 // Acknowledge calls that succeeded
	OffsetUpdates uint64 // UpdateOffset calls that succeeded
	Commits       uint64 // offset commits sent to the broker
	Registered    uint64 // Register calls that succeeded
	Subscribed    uint64 // Subscribe calls that succeeded
	StreamsOpened uint64 // Consume streams started
	ActiveStreams int64  // Consume streams running now
	Failed        uint64 // calls answered with an error (success=false or a status)
	Clients       int    // client IDs with state
	Evicted       uint64 // clients forgotten at MaxClients
}

// Bridge serves rafka.BrokerService by storing into a Kafka-protocol
// cluster through franz-go. Build its grpc.Server with [Bridge.GRPCServer]
// and serve it on any listener (TCP, Raptor, both). See docs/RAFKA.md.
type Bridge struct {
	rafkapb.UnimplementedBrokerServiceServer

	cfg  Config
	log  *slog.Logger
	prod *kgo.Client
	adm  *kadm.Client

	ctx    context.Context // cancelled by Close: ends every call
	cancel context.CancelFunc
	wg     sync.WaitGroup // calls in progress

	mu      sync.Mutex
	closed  bool
	topics  map[string]int32 // partition counts of topics seen to exist
	clients map[string]*client
	uses    uint64 // counts client lookups, for least-recently-used eviction
	streams int

	published, delivered, acked, offsetUpdates, commits    atomic.Uint64
	registered, subscribed, streamsOpened, failed, evicted atomic.Uint64
	active                                                 atomic.Int64
}

var _ rafkapb.BrokerServiceServer = (*Bridge)(nil)

type topicPartition struct {
	topic string
	part  int32
}

// client is the state of one client ID: a consumer's subscriptions, its
// recent deliveries and its commits (the Kafka group is the ID).
type client struct {
	id      string
	used    uint64 // Bridge.uses at the last lookup; guarded by Bridge.mu
	streams int    // running Consume streams; guarded by Bridge.mu

	mu      sync.Mutex // guards the fields below
	typ     rafkapb.ClientType
	topics  []string           // subscriptions, sorted
	recent  []delivery         // ring of the latest deliveries
	next    int                // where the next delivery goes in recent
	lastAck map[string]msgAddr // per topic, the last message acknowledged

	commitMu  sync.Mutex               // serialises the client's commits
	committed map[topicPartition]int64 // last offset committed here; guarded by commitMu
}

type msgAddr struct {
	part int32
	off  int64
}

type delivery struct {
	topic string
	msgAddr
}

// NewBridge connects a bridge to the brokers in cfg. Close it after the
// grpc.Server serving it has stopped, or before, which ends its calls.
func NewBridge(cfg Config) (*Bridge, error) {
	c, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: c, log: c.Logger, topics: map[string]int32{}, clients: map[string]*client{}}
	// The delivery timeout fails a record franz-go could not deliver in a
	// call's time (Publish answers by then anyway).
	opts := append(b.baseOptions(), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(c.CallTimeout))
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

// GRPCServer returns a grpc.Server (plain protobuf, application/grpc)
// serving the bridge as rafka.BrokerService. The bridge's interceptors
// run first: they count each call in (Close waits for it and cancels it),
// and turn a failure into the answer Rafka's clients expect
// (docs/RAFKA.md, "Errors"). opts are added after them.
func (b *Bridge) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	s := grpc.NewServer(append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(b.unaryInterceptor),
		grpc.ChainStreamInterceptor(b.streamInterceptor),
	}, opts...)...)
	rafkapb.RegisterBrokerServiceServer(s, b)
	return s
}

// Close ends every call in progress (Consume streams with
// ErrBridgeClosed), waits for them and closes the bridge's franz-go
// clients. Later calls fail with ErrBridgeClosed. Close is idempotent.
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.prod.Close() // fails buffered records: a Publish does not wait for their timeout
	b.wg.Wait()
	return nil
}

// Stats returns a snapshot of the bridge's counters.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	clients := len(b.clients)
	b.mu.Unlock()
	return Stats{
		Published: b.published.Load(), Delivered: b.delivered.Load(), Acknowledged: b.acked.Load(),
		OffsetUpdates: b.offsetUpdates.Load(), Commits: b.commits.Load(), Registered: b.registered.Load(),
		Subscribed: b.subscribed.Load(), StreamsOpened: b.streamsOpened.Load(), ActiveStreams: b.active.Load(),
		Failed: b.failed.Load(), Clients: clients, Evicted: b.evicted.Load(),
	}
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
	if b.ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)) {
		return ErrBridgeClosed
	}
	return err
}

// partitions returns the partition count of topic, asking the broker when
// the topic is not known yet, and creating it when create and
// Config.CreateTopics allow.
func (b *Bridge) partitions(ctx context.Context, topic string, create bool) (int32, error) {
	if topic == "" {
		return 0, &InvalidArgumentError{Field: "topic", Value: topic, Reason: "empty"}
	}
	b.mu.Lock()
	n, ok := b.topics[topic]
	b.mu.Unlock()
	if ok {
		return n, nil
	}
	n, err := b.describeTopic(ctx, topic)
	var unknown *UnknownTopicError
	if errors.As(err, &unknown) && create && b.cfg.CreateTopics {
		resp, cerr := b.adm.CreateTopic(ctx, b.cfg.TopicPartitions, -1, nil, topic)
		if cerr == nil {
			cerr = resp.Err
		}
		if cerr != nil && !errors.Is(cerr, kerr.TopicAlreadyExists) {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, &BrokerError{Op: "create topic", Topic: topic, Err: cerr}
		}
		if cerr == nil && resp.NumPartitions > 0 {
			n, err = resp.NumPartitions, nil
			b.log.Info("rafka: created topic", "topic", topic, "partitions", n)
		} else {
			n, err = b.awaitTopic(ctx, topic)
		}
	}
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	b.topics[topic] = n
	b.mu.Unlock()
	return n, nil
}

func (b *Bridge) describeTopic(ctx context.Context, topic string) (int32, error) {
	tds, err := b.adm.ListTopics(ctx, topic)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, &BrokerError{Op: "metadata", Topic: topic, Err: err}
	}
	td, ok := tds[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return 0, &UnknownTopicError{Topic: topic}
	}
	if td.Err != nil {
		return 0, &BrokerError{Op: "metadata", Topic: topic, Err: td.Err}
	}
	return int32(len(td.Partitions)), nil
}

// awaitTopic describes a topic that exists (created by someone) until the
// broker's metadata shows it: topic creation propagates to metadata
// asynchronously.
func (b *Bridge) awaitTopic(ctx context.Context, topic string) (n int32, err error) {
	err = retryUnknownTopic(ctx, func() error {
		n, err = b.describeTopic(ctx, topic)
		return err
	})
	return n, err
}

// retryUnknownTopic calls fn until it succeeds or fails otherwise than
// with an unknown topic (a topic just created is not yet known
// everywhere), 20 times at most, backing off from 10 to 200 ms.
func retryUnknownTopic(ctx context.Context, fn func() error) error {
	const attempts = 20
	for i := 1; ; i++ {
		err := fn()
		var unknown *UnknownTopicError
		if (!errors.As(err, &unknown) && !errors.Is(err, kerr.UnknownTopicOrPartition)) || i == attempts {
			return err
		}
		t := time.NewTimer(min(time.Duration(i)*10*time.Millisecond, 200*time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func (b *Bridge) forgetTopic(topic string) {
	b.mu.Lock()
	delete(b.topics, topic)
	b.mu.Unlock()
}

// checkPartition fails unless topic has partition p.
func (b *Bridge) checkPartition(ctx context.Context, topic string, p int32) (int32, error) {
	n, err := b.partitions(ctx, topic, false)
	if err != nil || (p >= 0 && p < n) {
		return n, err
	}
	b.forgetTopic(topic) // partitions may have been added
	if n, err = b.partitions(ctx, topic, false); err != nil {
		return 0, err
	}
	if p < 0 || p >= n {
		return n, &UnknownPartitionError{Topic: topic, Partition: p, Partitions: n}
	}
	return n, nil
}

// client returns the state of id, creating it.
func (b *Bridge) client(field, id string) (*client, error) {
	if id == "" {
		return nil, &InvalidArgumentError{Field: field, Value: id, Reason: "empty"}
	}
	if len(id) > 249 {
		short := []rune(id)[:min(32, utf8.RuneCountInString(id))]
		return nil, &InvalidArgumentError{Field: field, Value: string(short) + "...", Reason: fmt.Sprintf("%d bytes, more than Kafka's 249 for a group ID", len(id))}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.clients[id]
	if c == nil {
		if len(b.clients) >= b.cfg.MaxClients && !b.evictLocked() {
			return nil, &LimitError{What: "clients with running streams", Limit: b.cfg.MaxClients}
		}
		c = &client{id: id, lastAck: map[string]msgAddr{}, committed: map[topicPartition]int64{}}
		b.clients[id] = c
	}
	b.uses++
	c.used = b.uses
	return c, nil
}

// evictLocked forgets the least recently used client without a running
// stream, and reports whether there was one. It scans every client: it
// runs only when MaxClients is reached.
func (b *Bridge) evictLocked() bool {
	var lru *client
	for _, c := range b.clients {
		if c.streams == 0 && (lru == nil || c.used < lru.used) {
			lru = c
		}
	}
	if lru == nil {
		return false
	}
	delete(b.clients, lru.id)
	b.evicted.Add(1)
	b.log.Debug("rafka: forgot client", "id", lru.id, "clients", len(b.clients))
	return true
}

// Publish implements rafka.BrokerService: one idempotent produce
// (acks=all) of the payload's bytes, keyed by key when it is not empty;
// the answer names the record's partition and offset.
func (b *Bridge) Publish(ctx context.Context, req *rafkapb.PublishRequest) (*rafkapb.PublishResponse, error) {
	if _, err := b.partitions(ctx, req.GetTopic(), true); err != nil {
		return nil, err
	}
	rec := &kgo.Record{Topic: req.GetTopic(), Value: []byte(req.GetPayload())}
	if req.GetKey() != "" {
		rec.Key = []byte(req.GetKey())
	}
	if req.GetProducerId() != "" {
		rec.Headers = []kgo.RecordHeader{{Key: HeaderProducerID, Value: []byte(req.GetProducerId())}}
	}
	// franz-go keeps a buffered record until it is delivered or fails,
	// whatever the context (a broker that cannot be dialed may hold it past
	// the delivery timeout), so the answer waits for the call's context too.
	var r *kgo.Record
	var err error
	delivered := make(chan struct{})
	b.prod.Produce(ctx, rec, func(pr *kgo.Record, perr error) {
		r, err = pr, perr
		close(delivered)
	})
	select {
	case <-delivered:
	case <-ctx.Done():
		if b.ctx.Err() != nil {
			return nil, ErrBridgeClosed
		}
		return nil, &BrokerError{Op: "publish", Topic: req.GetTopic(), Err: fmt.Errorf("no acknowledgement from the Kafka cluster %v within the call's bound (%v, or the client's deadline): the message may still be stored", b.cfg.Brokers, b.cfg.CallTimeout)}
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		b.forgetTopic(req.GetTopic())
		return nil, &UnknownTopicError{Topic: req.GetTopic()}
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return nil, &InvalidArgumentError{Field: "payload", Value: fmt.Sprintf("%d bytes", len(req.GetKey())+len(req.GetPayload())), Reason: err.Error()}
	default:
		return nil, &BrokerError{Op: "publish", Topic: req.GetTopic(), Err: err}
	}
	b.published.Add(1)
	return &rafkapb.PublishResponse{
		MessageId: MessageID(r.Partition, r.Offset), Success: true, Partition: r.Partition, Offset: r.Offset,
		Message: fmt.Sprintf("published to topic %q partition %d offset %d", r.Topic, r.Partition, r.Offset),
	}, nil
}

// HeaderProducerID is the Kafka record header carrying a Publish's
// producer_id.
const HeaderProducerID = "rafka-producer-id"

// Register implements rafka.BrokerService: records the client and its
// type.
func (b *Bridge) Register(ctx context.Context, req *rafkapb.RegisterRequest) (*rafkapb.RegisterResponse, error) {
	t := req.GetClientType()
	if _, ok := rafkapb.ClientType_name[int32(t)]; !ok {
		return nil, &InvalidArgumentError{Field: "client_type", Value: fmt.Sprint(int32(t)), Reason: "not UNKNOWN (0), PRODUCER (1) or CONSUMER (2)"}
	}
	c, err := b.client("client_id", req.GetClientId())
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.typ = t
	c.mu.Unlock()
	b.registered.Add(1)
	return &rafkapb.RegisterResponse{Success: true, Message: fmt.Sprintf("registered %s %q", t, c.id)}, nil
}

// Subscribe implements rafka.BrokerService: adds topic to the consumer's
// subscriptions (a Consume without a topic streams them all).
func (b *Bridge) Subscribe(ctx context.Context, req *rafkapb.SubscribeRequest) (*rafkapb.SubscribeResponse, error) {
	c, err := b.client("consumer_id", req.GetConsumerId())
	if err != nil {
		return nil, err
	}
	n, err := b.partitions(ctx, req.GetTopic(), true)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if i, found := slices.BinarySearch(c.topics, req.GetTopic()); !found {
		c.topics = slices.Insert(c.topics, i, req.GetTopic())
	}
	all := strings.Join(c.topics, ", ")
	c.mu.Unlock()
	b.subscribed.Add(1)
	return &rafkapb.SubscribeResponse{Success: true, Message: fmt.Sprintf("consumer %q subscribed to %q (%d partitions); subscriptions: %s", c.id, req.GetTopic(), n, all)}, nil
}

// Acknowledge implements rafka.BrokerService: commits the offset after the
// acknowledged message for the consumer's group (the consumer ID), never
// backwards.
func (b *Bridge) Acknowledge(ctx context.Context, req *rafkapb.AcknowledgeRequest) (*rafkapb.AcknowledgeResponse, error) {
	c, err := b.client("consumer_id", req.GetConsumerId())
	if err != nil {
		return nil, err
	}
	p, o, err := ParseMessageID(req.GetMessageId())
	if err != nil {
		return nil, err
	}
	if _, err := b.checkPartition(ctx, req.GetTopic(), p); err != nil {
		return nil, err
	}
	tp := topicPartition{req.GetTopic(), p}
	next, err := b.commit(ctx, c, tp, o+1, false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.lastAck[tp.topic] = msgAddr{p, o}
	c.mu.Unlock()
	b.acked.Add(1)
	return &rafkapb.AcknowledgeResponse{Success: true, Message: fmt.Sprintf("acknowledged %s of %q: consumer %q resumes partition %d at offset %d", req.GetMessageId(), tp.topic, c.id, p, next)}, nil
}

// UpdateOffset implements rafka.BrokerService: the consumer has processed
// the message at offset; its next Consume resumes after it. The commit may
// move the position backwards. The partition is found as docs/RAFKA.md,
// "Offsets", says.
func (b *Bridge) UpdateOffset(ctx context.Context, req *rafkapb.UpdateOffsetRequest) (*rafkapb.UpdateOffsetResponse, error) {
	c, err := b.client("consumer_id", req.GetConsumerId())
	if err != nil {
		return nil, err
	}
	if req.GetOffset() < 0 {
		return nil, &InvalidArgumentError{Field: "offset", Value: fmt.Sprint(req.GetOffset()), Reason: "negative"}
	}
	n, err := b.partitions(ctx, req.GetTopic(), false)
	if err != nil {
		return nil, err
	}
	p, err := c.partitionOf(req.GetTopic(), req.GetOffset(), n)
	if err != nil {
		return nil, err
	}
	tp := topicPartition{req.GetTopic(), p}
	next, err := b.commit(ctx, c, tp, req.GetOffset()+1, true)
	if err != nil {
		return nil, err
	}
	b.offsetUpdates.Add(1)
	return &rafkapb.UpdateOffsetResponse{Success: true, Message: fmt.Sprintf("consumer %q resumes %q partition %d at offset %d", c.id, tp.topic, p, next)}, nil
}

// partitionOf finds the partition whose message at off the consumer means:
// the only partition of a one-partition topic; else the partition of the
// message it last acknowledged on topic, if that was at off; else the one
// partition that recently delivered off to it.
func (c *client) partitionOf(topic string, off int64, partitions int32) (int32, error) {
	if partitions == 1 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.lastAck[topic]; ok && a.off == off {
		return a.part, nil
	}
	var cands []int32
	for _, d := range c.recent {
		if d.topic == topic && d.off == off && !slices.Contains(cands, d.part) {
			cands = append(cands, d.part)
		}
	}
	if len(cands) == 1 {
		return cands[0], nil
	}
	slices.Sort(cands)
	return 0, &OffsetPartitionError{ConsumerID: c.id, Topic: topic, Offset: off, Partitions: partitions, Candidates: cands}
}

// noteDelivery remembers that the consumer was sent the message at a.
func (c *client) noteDelivery(limit int, topic string, a msgAddr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := delivery{topic, a}
	if len(c.recent) < limit {
		c.recent = append(c.recent, d)
		return
	}
	c.recent[c.next] = d
	c.next = (c.next + 1) % limit
}

// commit commits next as the consumer's group offset of tp (a simple
// commit: the bridge never joins the group). Unless force, an offset not
// above the last one committed here is a no-op; the same offset twice is
// always one.
func (b *Bridge) commit(ctx context.Context, c *client, tp topicPartition, next int64, force bool) (int64, error) {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	if last, ok := c.committed[tp]; ok && (next == last || (!force && next < last)) {
		return last, nil
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: tp.topic, Partition: tp.part, At: next, LeaderEpoch: -1})
	resp, err := b.adm.CommitOffsets(ctx, c.id, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, &BrokerError{Op: "commit", Topic: tp.topic, Err: fmt.Errorf("group %q partition %d offset %d: %w", c.id, tp.part, next, err)}
	}
	b.commits.Add(1)
	c.committed[tp] = next
	return next, nil
}

// The RPCs only Rafka brokers call among themselves.

const (
	whyCluster = "it stores into a Kafka cluster, whose brokers replicate and balance partitions among themselves; it has no Rafka peers"
	whyMesh    = "it is not a node of Rafka's peer-to-peer mesh; the Kafka cluster behind it keeps its own membership"
)

// ForwardMessage implements rafka.BrokerService: Unimplemented.
func (b *Bridge) ForwardMessage(context.Context, *rafkapb.ForwardMessageRequest) (*rafkapb.ForwardMessageResponse, error) {
	return nil, &BrokerOnlyError{Method: "ForwardMessage", Why: whyCluster + " (Publish stores directly)"}
}

// JoinCluster implements rafka.BrokerService: Unimplemented.
func (b *Bridge) JoinCluster(context.Context, *rafkapb.JoinClusterRequest) (*rafkapb.JoinClusterResponse, error) {
	return nil, &BrokerOnlyError{Method: "JoinCluster", Why: whyCluster}
}

// GossipMessage implements rafka.BrokerService: Unimplemented.
func (b *Bridge) GossipMessage(context.Context, *rafkapb.GossipMessageRequest) (*rafkapb.GossipMessageResponse, error) {
	return nil, &BrokerOnlyError{Method: "GossipMessage", Why: whyMesh}
}

// GetMeshTopology implements rafka.BrokerService: Unimplemented.
func (b *Bridge) GetMeshTopology(context.Context, *rafkapb.GetMeshTopologyRequest) (*rafkapb.GetMeshTopologyResponse, error) {
	return nil, &BrokerOnlyError{Method: "GetMeshTopology", Why: whyMesh + " (GetClusterInfo describes the Kafka brokers)"}
}

// JoinMesh implements rafka.BrokerService: Unimplemented.
func (b *Bridge) JoinMesh(context.Context, *rafkapb.JoinMeshRequest) (*rafkapb.JoinMeshResponse, error) {
	return nil, &BrokerOnlyError{Method: "JoinMesh", Why: whyMesh}
}

// LeaveMesh implements rafka.BrokerService: Unimplemented.
func (b *Bridge) LeaveMesh(context.Context, *rafkapb.LeaveMeshRequest) (*rafkapb.LeaveMeshResponse, error) {
	return nil, &BrokerOnlyError{Method: "LeaveMesh", Why: whyMesh}
}
