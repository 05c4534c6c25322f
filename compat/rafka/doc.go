// Package rafka carries Rafka's gRPC BrokerService over Raptor and serves it
// from a Kafka-protocol broker.
//
// The service is rafka.BrokerService (Publish, Consume as a server stream —
// push delivery —, Acknowledge, Register, Subscribe, UpdateOffset,
// GetMetrics). It is Raptor's own Go definition of the shape of Rafka's
// BrokerService, not code generated from Rafka's .proto: the messages are Go
// structs ([PublishRequest], ...) encoded with msgpack by a gRPC codec
// registered under the content-subtype [CodecName], and the service is a
// hand-written grpc.ServiceDesc ([BrokerServiceDesc]). gRPC itself is
// unchanged, so the service runs over a Raptor listener
// (grpc.Server.Serve(reliable.Listener)) and a Raptor dialer
// (grpc.WithContextDialer) exactly as over TCP. docs/RAFKA.md lists the
// fields and what would change to match Rafka's .proto byte for byte.
//
// [Bridge] implements the service on top of franz-go:
//
//   - Publish is one idempotent produce (acks=all) of a record with the
//     message's key, value and headers; the key picks the partition
//     (Kafka's murmur2), and the reply is the record's partition and
//     offset.
//   - Register records a consumer (its group defaults to its own ID, so
//     each consumer gets every message); Subscribe records its topics.
//   - Consume makes the stream a member of a Kafka consumer group: the
//     broker assigns the group's partitions among its streams, and the
//     bridge pushes their records in offset order per partition. Where the
//     group has committed an offset, delivery starts there — how a
//     restarted consumer resumes.
//   - Acknowledge commits offset+1 for the group (cumulative, never
//     backwards); UpdateOffset commits any offset and moves the running
//     stream that owns the partition (seek).
//   - GetMetrics returns the bridge's counters.
//
// Delivery is exactly once per group for acknowledged messages and in
// order per partition; a message pushed but not acknowledged when its
// stream ends (or its partition moves to another stream of the group) is
// delivered again, as with any Kafka consumer group.
//
// Errors reach a [Client] typed: [UnknownTopicError], [UnknownPartitionError],
// [UnknownConsumerError], [InvalidArgumentError], [LimitError],
// [StreamReplacedError], [BrokerError] and [ErrBridgeClosed], each with its
// gRPC code (status.Code works on them) and carried as a
// google.rpc.ErrorInfo status detail.
package rafka
