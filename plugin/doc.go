// Package plugin is the transport adapter that Raptor users touch.
//
// A [Transport] dials and listens by URL: tcp://host:port goes to the
// standard library, raptor://host:port to package reliable (Raptor over
// kernel UDP) and raptor+dpdk://host:port to Raptor over DPDK (only in a
// build with -tags dpdk). Everything it returns is a plain net.Conn or
// net.Listener, so existing code keeps working when only the URL changes.
//
// On top of that sit the pieces that put Raptor in front of software that
// cannot link it:
//
//   - [Relay]: accepts on one endpoint and forwards every connection to
//     another. Raptor in, TCP out is the gateway (in front of Kafka, Redpanda
//     or Rafka); TCP in, Raptor out is the proxy (for clients that cannot link
//     Go). Both dial the upstream on a connection's first bytes, close idle
//     connections, cap streams in total, per source address and per Raptor
//     session, count everything, drain gracefully, and refuse a connection in
//     its own transport's terms: a Raptor stream is reset with a relay code
//     ([CodeUpstreamUnreachable], [CodeBusy], [CodeDraining], [CodeIdle]), a
//     TCP connection is closed with RST; nothing is written into the byte
//     stream. Package plugin/kafkarelay makes it Kafka-aware, so one relay
//     fronts a whole cluster.
//   - [FailoverDialer]: dials one of several equivalent endpoints, with one
//     github.com/sony/gobreaker/v2 circuit breaker per endpoint and new
//     connections spread over the healthy ones.
//   - [ListenDual]: one listener that accepts TCP and Raptor on the same port
//     number (TCP and UDP are separate port spaces).
//
// See docs/KAFKA.md for how the pieces fit in front of Kafka.
package plugin
