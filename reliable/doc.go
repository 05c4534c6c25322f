// Package reliable is Raptor's session engine: reliable, ordered, flow- and
// congestion-controlled byte streams multiplexed over one UDP "session"
// between two endpoints (docs/PROTOCOL.md §5–§8).
//
// A Listener accepts sessions and yields every peer-opened stream through
// Accept, as a net.Conn; Dial and Dialer open sessions and streams. Streams are
// complete net.Conns (deadlines, half-close, concurrent Read and Write), so
// franz-go, grpc-go and any TCP protocol can run over them unchanged.
//
// Concurrency: each endpoint has one receive goroutine that reads datagrams in
// batches and processes them under the owning session's mutex; each session has
// one goroutine that builds and sends packets and runs the session's single
// timer (ACK delay, loss detection, retransmission timeout, pacing, keepalive,
// idle timeout). No goroutine or timer is created per packet, and no lock is
// held across a system call.
package reliable
