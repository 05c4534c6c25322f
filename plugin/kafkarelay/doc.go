// Package kafkarelay is a Kafka-aware relay: one process in front of a whole
// Kafka cluster. It runs a [plugin.Relay] whose upstream connections are
// wrapped by a parser of the Kafka framing (4-byte length prefixes,
// correlation IDs, the request key and version that say how to read each
// response), and rewrites every broker address a response carries to the
// relay's own listener for that broker:
//
//   - Metadata (key 3) and DescribeCluster (key 60): the broker list, which
//     also opens a listener for each broker that appears and closes the one
//     of each broker that left;
//   - FindCoordinator (key 10): the coordinator, and the v4+ coordinator list;
//   - Produce (key 0) v10+ and Fetch (key 1) v16+: the KIP-951 node
//     endpoints sent with NOT_LEADER errors; ShareFetch (78) and
//     ShareAcknowledge (79): their node endpoints;
//   - ApiVersions (key 18): clamped to the versions this package can parse
//     (franz-go's kmsg), and DescribeQuorum (55) to v1, whose responses
//     carry no controller addresses.
//
// Responses are parsed and re-encoded with kmsg (flexible versions and
// tagged fields included); requests pass unchanged. One file per rewritten
// response type, named by its key, as in franz-go's kfake.
//
// The same type serves both directions: with a tcp:// listen URL and
// raptor:// upstreams it is `raptor proxy` (any Kafka client reaches a
// Raptor cluster), with a raptor:// listen URL and tcp:// upstreams it is
// `raptor gateway --kafka` (Raptor clients reach a TCP-only cluster).
// Other protocols do not belong here: use [plugin.Relay] directly.
package kafkarelay
