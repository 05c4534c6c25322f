// Package rafka serves Rafka's gRPC interface (package rafka, service
// BrokerService; generated from rafkapb/rafka.proto with protoc, plain
// protobuf on application/grpc) from a Kafka-protocol cluster, over TCP and
// over Raptor.
//
// A client generated from Rafka's own .proto calls a [Bridge] unchanged:
//
//   - Publish is one idempotent produce (acks=all) of the payload's bytes,
//     keyed by key; the answer's message_id is "<partition>-<offset>"
//     ([MessageID]), with the record's partition and offset.
//   - Consume is a push stream: each partition starts where the consumer's
//     group (its ID) has committed, else at the end (a live tail). Kafka
//     values that are not UTF-8 travel as [PayloadBase64Prefix] plus
//     base64 ([EncodePayload]), so a proto3 string never breaks the stream.
//   - Acknowledge commits the offset after the message it names;
//     UpdateOffset commits after an offset of the consumer's topic.
//   - Register and Subscribe record a client and its topics; GetMetrics,
//     HealthCheck and GetClusterInfo describe the Kafka cluster.
//   - The RPCs Rafka brokers call among themselves (ForwardMessage,
//     JoinCluster, the mesh) answer Unimplemented with the reason.
//
// Failures reach Rafka's clients as they read them: success=false and a
// message for the RPCs whose responses have those fields (the gRPC code
// and reason ride in the trailers [TrailerCode] and [TrailerReason]), a
// gRPC status with a google.rpc.ErrorInfo detail for the others. One pair
// of gRPC interceptors ([Bridge.GRPCServer]) does this for every RPC.
//
// [NewServer] puts it together as `raptor rafka serve` runs it: TCP and
// Raptor on one port number, over an embedded Kafka broker (compat/kafka)
// or a cluster. docs/RAFKA.md has the mapping and what differs from
// Rafka's own broker.
package rafka
