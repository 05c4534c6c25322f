package rafka

// The messages of rafka.BrokerService. They are plain Go structs encoded by
// the msgpack codec registered under [CodecName]; the msgpack field names
// are the snake_case names a protobuf definition would use (see
// docs/RAFKA.md for the mapping).

// Header is one record header. Order is kept and keys may repeat, as in
// Kafka.
type Header struct {
	Key   string `msgpack:"key"`
	Value []byte `msgpack:"value"`
}

// PublishRequest stores one message in Topic.
type PublishRequest struct {
	// Topic must exist on the Kafka-protocol broker.
	Topic string `msgpack:"topic"`
	// Key chooses the partition (Kafka's murmur2 hash, so the same key
	// always lands in the same partition); messages without a key are
	// spread over partitions.
	Key     []byte   `msgpack:"key"`
	Value   []byte   `msgpack:"value"`
	Headers []Header `msgpack:"headers"`
}

// PublishResponse tells where the message was stored.
type PublishResponse struct {
	Partition int32 `msgpack:"partition"`
	Offset    int64 `msgpack:"offset"`
}

// Offsets Consume starts from when the group has committed nothing for a
// partition (Kafka's reset offset). Any other non-negative value is an
// exact offset in every such partition.
const (
	// StartEarliest starts from the oldest stored message.
	StartEarliest int64 = -2
	// StartLatest starts after the newest message: only new messages.
	StartLatest int64 = -1
)

// ConsumeRequest opens a push stream of messages for a registered consumer.
type ConsumeRequest struct {
	// ConsumerID is what Register returned. Required.
	ConsumerID string `msgpack:"consumer_id"`
	// Group overrides the group given at Register. Messages are delivered
	// once per group: the group's consumers share the partitions.
	Group string `msgpack:"group"`
	// Topic to consume; empty means every topic the consumer subscribed to.
	Topic string `msgpack:"topic"`
	// StartOffset applies only to partitions where the group has no
	// committed offset: 0 (the default) and StartEarliest start from the
	// oldest message, StartLatest from new messages only, n > 0 at offset
	// n. A committed offset (Acknowledge, UpdateOffset) always wins, which
	// is how a restarted consumer resumes.
	StartOffset int64 `msgpack:"start_offset"`
}

// Message is one delivered message.
type Message struct {
	Topic     string   `msgpack:"topic"`
	Partition int32    `msgpack:"partition"`
	Offset    int64    `msgpack:"offset"`
	Key       []byte   `msgpack:"key"`
	Value     []byte   `msgpack:"value"`
	Headers   []Header `msgpack:"headers"`
	// Timestamp is the record's time in milliseconds since the Unix epoch.
	Timestamp int64 `msgpack:"timestamp"`
}

// ConsumeResponse is one push of the Consume stream: messages in offset
// order within each partition.
type ConsumeResponse struct {
	Messages []Message `msgpack:"messages"`
}

// AcknowledgeRequest commits a processed message: the group's committed
// offset of the partition becomes Offset+1. Acknowledgements are
// cumulative (everything up to Offset in the partition is done) and never
// move the committed offset backwards; use UpdateOffset for that.
type AcknowledgeRequest struct {
	// ConsumerID is the acknowledging consumer; it names the group when
	// Group is empty.
	ConsumerID string `msgpack:"consumer_id"`
	Group      string `msgpack:"group"`
	Topic      string `msgpack:"topic"`
	Partition  int32  `msgpack:"partition"`
	Offset     int64  `msgpack:"offset"`
}

// AcknowledgeResponse reports the group's committed offset (the next
// offset to deliver) of the partition after the call.
type AcknowledgeResponse struct {
	Committed int64 `msgpack:"committed"`
}

// RegisterRequest registers a consumer.
type RegisterRequest struct {
	// ClientID, when set, becomes the consumer ID, so that a restarted
	// process registering again gets the same ID. Empty: the bridge makes
	// one up.
	ClientID string `msgpack:"client_id"`
	// Group is the consumer group. Empty: the consumer ID, so that each
	// consumer receives every message (Rafka's per-consumer delivery).
	Group string `msgpack:"group"`
}

// RegisterResponse carries the consumer ID to use in the other calls.
type RegisterResponse struct {
	ConsumerID string `msgpack:"consumer_id"`
	Group      string `msgpack:"group"`
}

// SubscribeRequest adds topics to a consumer's subscription, which Consume
// uses when it names no topic.
type SubscribeRequest struct {
	ConsumerID string   `msgpack:"consumer_id"`
	Topics     []string `msgpack:"topics"`
}

// SubscribeResponse lists the consumer's whole subscription.
type SubscribeResponse struct {
	Topics []string `msgpack:"topics"`
}

// UpdateOffsetRequest moves a group's position in a partition (a seek):
// Offset becomes the committed offset, the next message delivered, even
// when it is lower than before. A running Consume stream of the group
// that owns the partition continues from there.
type UpdateOffsetRequest struct {
	// ConsumerID names the group when Group is empty.
	ConsumerID string `msgpack:"consumer_id"`
	Group      string `msgpack:"group"`
	Topic      string `msgpack:"topic"`
	Partition  int32  `msgpack:"partition"`
	Offset     int64  `msgpack:"offset"`
}

// UpdateOffsetResponse reports the committed offset after the call.
type UpdateOffsetResponse struct {
	Committed int64 `msgpack:"committed"`
}

// GetMetricsRequest asks for the bridge's counters.
type GetMetricsRequest struct{}

// GetMetricsResponse holds the bridge's counters since it started.
type GetMetricsResponse struct {
	// Published counts messages stored by Publish; PublishErrors the
	// Publish calls that failed.
	Published     uint64 `msgpack:"published"`
	PublishErrors uint64 `msgpack:"publish_errors"`
	// Delivered counts messages pushed on Consume streams.
	Delivered uint64 `msgpack:"delivered"`
	// Acknowledged counts Acknowledge calls that succeeded; OffsetUpdates
	// UpdateOffset calls that succeeded.
	Acknowledged  uint64 `msgpack:"acknowledged"`
	OffsetUpdates uint64 `msgpack:"offset_updates"`
	// Registered counts Register calls; Consumers is the number of
	// registered consumers now.
	Registered uint64 `msgpack:"registered"`
	Consumers  uint64 `msgpack:"consumers"`
	// StreamsOpened counts Consume streams started; ActiveStreams is the
	// number running now.
	StreamsOpened uint64 `msgpack:"streams_opened"`
	ActiveStreams uint64 `msgpack:"active_streams"`
}
