// Package kafka carries the Kafka protocol over Raptor.
//
//   - [Dialer] gives a franz-go client a Raptor dialer ([Dialer.Opt] is a
//     kgo.Opt): each broker's advertised host:port is mapped to that broker's
//     Raptor endpoint — by default raptor:// on the same host and port
//     number (UDP), or an explicit endpoint, or a list of gateways with
//     failover (one circuit breaker per gateway).
//   - [Broker] is an embedded Kafka-protocol cluster (franz-go's kfake, one
//     or more brokers) whose listeners each accept TCP and Raptor on the same
//     port number, optionally persistent in a data directory.
//
// In front of a cluster that cannot link Go (Kafka, Redpanda), run one
// Kafka-aware gateway (package plugin/kafkarelay, `raptor gateway --kafka`);
// for clients that cannot link Go, one Kafka-aware proxy (`raptor proxy`);
// see docs/KAFKA.md.
// Kafka's idempotent producer (franz-go's default) plus redialing through
// the failover dialer gives neither loss nor duplicates across a gateway
// failure.
package kafka
