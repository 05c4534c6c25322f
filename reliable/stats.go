package reliable

import (
	"sync/atomic"
	"time"
)

// Counter names one of the counters of a session or an endpoint. The
// counters are one table (an enum and an array, as Aeron's system counters
// are): [Stats.Counters] is indexed by Counter, and [Counter.Info] describes
// each for exporters (the Prometheus collector of package plugin and
// `raptor stat` read the same table). A new counter is one constant here and
// one row of counterTable.
type Counter uint8

// The counters. Drops, limits and violations are families with a reason
// (docs/PROTOCOL.md §8.11 says when limits and violations are counted).
const (
	CounterPacketsSent             Counter = iota // UDP datagrams sent
	CounterPacketsReceived                        // UDP datagrams received
	CounterBytesSent                              // UDP payload bytes sent
	CounterBytesReceived                          // UDP payload bytes received
	CounterStreamBytesSent                        // new stream bytes, first transmissions
	CounterStreamBytesReceived                    // new stream bytes delivered in order
	CounterRetransmits                            // packets declared lost whose contents were resent
	CounterRTOs                                   // retransmission timeouts
	CounterNaksSent                               // NAK frames sent
	CounterNaksReceived                           // NAK frames received
	CounterAcksSent                               // ACK frames sent
	CounterAcksReceived                           // ACK frames received
	CounterDuplicates                             // duplicate packets received
	CounterDropsMalformed                         // unparsable datagrams or frames
	CounterDropsUnknownSession                    // no session for the connection ID
	CounterDropsAddressMismatch                   // datagram from another address than the session's peer
	CounterDropsBadCookie                         // Initial with an invalid or expired cookie
	CounterDropsVersion                           // unsupported version (answered with VersionNegotiation)
	CounterDropsSessionLimit                      // Initial refused because MaxSessions was reached
	CounterDropsAcceptQueue                       // streams refused because the accept backlog (or the session's share of it) was full
	CounterDropsAuth                              // packets that failed authentication (forged, modified, or no keys yet)
	CounterSessionsOpened                         // sessions opened
	CounterSessionsClosed                         // sessions closed
	CounterStreamsOpened                          // streams opened
	CounterStreamsClosed                          // streams closed
	CounterLimitAckDelay                          // peer ACK delays clamped to its max_ack_delay
	CounterLimitCwnd                              // times the congestion window reached Config.MaxCongestionWindow
	CounterLimitReceiveBudget                     // packets not acknowledged: stream data over the session's receive budget
	CounterLimitMemory                            // packets not acknowledged, writes held or sessions refused at Config.MaxMemory
	CounterViolationParams                        // sessions refused: a transport parameter out of range
	CounterViolationOptimisticAck                 // sessions closed: ACK of a skipped packet number
	CounterViolationGaps                          // sessions closed: too many gaps in received stream data
	CounterProbesSent                             // datagram size probes sent (docs/PROTOCOL.md §8.12)
	CounterProbesAcked                            // datagram size probes acknowledged: the size went up
	CounterProbesLost                             // datagram size probes lost (no congestion signal)
	CounterBlackHoles                             // confirmed datagram sizes the path stopped carrying (back to the base size)
	CounterSpuriousRTOs                           // retransmission timeouts whose packet was acknowledged after all (docs/PROTOCOL.md §8.13)
	CounterSpuriousLosses                         // packets declared lost by RACK or a NAK and acknowledged after all
	CounterUndos                                  // loss episodes proven spurious whose congestion response was undone
	CounterPTOHolds                               // due probe timeouts held because received datagrams waited to be read
	CounterICMPErrors                             // ICMP errors about the peer reported on a dialed session's connected socket after its handshake: ignored
	CounterCongestionEvents                       // congestion window reductions: losses taken as congestion, persistent congestion
	CounterStreamBytesDirect                      // stream bytes copied straight into a waiting Read's buffer (of CounterStreamBytesReceived)
	CounterStreamBytesOpenedInRing                // stream bytes the AEAD decrypted straight into the stream's receive ring (not copied there)
	CounterLimitUnacknowledged                    // sessions closed: the peer acknowledged nothing for the idle timeout while data was in flight

	NumCounters // the number of counters, not a counter
)

// CounterInfo describes a counter for exporters.
type CounterInfo struct {
	// Family is the metric name without prefix and unit suffix, for
	// example "packets_sent" (Prometheus: raptor_packets_sent_total).
	Family string
	// Reason is the value of the "reason" label within a family of several
	// counters ("drops", "limits", "violations"); "" for a lone counter.
	Reason string
	// Help is one line for the metric's HELP text; counters of one family
	// share it.
	Help string
}

const (
	dropsHelp      = "Datagrams or streams dropped, by reason."
	limitsHelp     = "Times a limit or budget held a peer back (clamped, capped, refused or not acknowledged), by reason."
	violationsHelp = "Sessions closed or refused for a protocol violation by the peer, by reason."
)

var counterTable = [NumCounters]CounterInfo{
	CounterPacketsSent:             {"packets_sent", "", "UDP datagrams sent."},
	CounterPacketsReceived:         {"packets_received", "", "UDP datagrams received."},
	CounterBytesSent:               {"bytes_sent", "", "UDP payload bytes sent."},
	CounterBytesReceived:           {"bytes_received", "", "UDP payload bytes received."},
	CounterStreamBytesSent:         {"stream_bytes_sent", "", "New stream bytes sent (first transmissions)."},
	CounterStreamBytesReceived:     {"stream_bytes_received", "", "New stream bytes delivered in order."},
	CounterRetransmits:             {"retransmits", "", "Packets declared lost whose contents were resent."},
	CounterRTOs:                    {"rtos", "", "Retransmission timeouts."},
	CounterNaksSent:                {"naks_sent", "", "NAK frames sent."},
	CounterNaksReceived:            {"naks_received", "", "NAK frames received."},
	CounterAcksSent:                {"acks_sent", "", "ACK frames sent."},
	CounterAcksReceived:            {"acks_received", "", "ACK frames received."},
	CounterDuplicates:              {"duplicates", "", "Duplicate packets received."},
	CounterDropsMalformed:          {"drops", "malformed", dropsHelp},
	CounterDropsUnknownSession:     {"drops", "unknown_session", dropsHelp},
	CounterDropsAddressMismatch:    {"drops", "address_mismatch", dropsHelp},
	CounterDropsBadCookie:          {"drops", "bad_cookie", dropsHelp},
	CounterDropsVersion:            {"drops", "version", dropsHelp},
	CounterDropsSessionLimit:       {"drops", "session_limit", dropsHelp},
	CounterDropsAcceptQueue:        {"drops", "accept_queue", dropsHelp},
	CounterDropsAuth:               {"drops", "auth", dropsHelp},
	CounterSessionsOpened:          {"sessions_opened", "", "Sessions opened."},
	CounterSessionsClosed:          {"sessions_closed", "", "Sessions closed."},
	CounterStreamsOpened:           {"streams_opened", "", "Streams opened."},
	CounterStreamsClosed:           {"streams_closed", "", "Streams closed."},
	CounterLimitAckDelay:           {"limits", "ack_delay", limitsHelp},
	CounterLimitCwnd:               {"limits", "cwnd", limitsHelp},
	CounterLimitReceiveBudget:      {"limits", "receive_budget", limitsHelp},
	CounterLimitMemory:             {"limits", "memory", limitsHelp},
	CounterViolationParams:         {"violations", "transport_params", violationsHelp},
	CounterViolationOptimisticAck:  {"violations", "optimistic_ack", violationsHelp},
	CounterViolationGaps:           {"violations", "stream_gaps", violationsHelp},
	CounterProbesSent:              {"size_probes_sent", "", "Datagram size probes sent."},
	CounterProbesAcked:             {"size_probes_acked", "", "Datagram size probes acknowledged (the datagram size went up)."},
	CounterProbesLost:              {"size_probes_lost", "", "Datagram size probes lost (not a congestion signal)."},
	CounterBlackHoles:              {"size_black_holes", "", "Datagram sizes the path stopped carrying (the session went back to its base size)."},
	CounterSpuriousRTOs:            {"spurious_rtos", "", "Retransmission timeouts whose packet was acknowledged after all."},
	CounterSpuriousLosses:          {"spurious_losses", "", "Packets declared lost (RACK, NAK) and acknowledged after all."},
	CounterUndos:                   {"undos", "", "Loss episodes proven spurious whose window reduction and timeout back-off were undone."},
	CounterPTOHolds:                {"pto_holds", "", "Due retransmission timeouts held briefly because received datagrams waited to be read."},
	CounterICMPErrors:              {"icmp_errors", "", "ICMP errors about the peer (port unreachable and the like) that the kernel reported on a dialed session's connected socket after its handshake; counted and ignored."},
	CounterCongestionEvents:        {"congestion_events", "", "Congestion window reductions (losses taken as congestion, persistent congestion); random losses within the loss tolerance are none."},
	CounterStreamBytesDirect:       {"stream_bytes_direct", "", "Stream bytes copied from the datagram straight into the buffer of a Read waiting for them (a part of stream_bytes_received)."},
	CounterStreamBytesOpenedInRing: {"stream_bytes_opened_in_ring", "", "Stream bytes that packet protection decrypted straight into the stream's receive ring, where a reader that is behind finds them, instead of decrypting them in the datagram and copying them there."},
	CounterLimitUnacknowledged:     {"limits", "unacknowledged", limitsHelp},
}

// Info describes c; the zero CounterInfo for a value out of range.
func (c Counter) Info() CounterInfo {
	if c >= NumCounters {
		return CounterInfo{}
	}
	return counterTable[c]
}

// String is the counter's key: its family, then "/" and the reason if it
// has one ("packets_sent", "drops/malformed"). `raptor stat` uses the same
// keys for what it scrapes.
func (c Counter) String() string {
	i := c.Info()
	if i.Reason == "" {
		return i.Family
	}
	return i.Family + "/" + i.Reason
}

// Stats are the counters of a session or, summed, of an endpoint. Counters
// count since creation; SmoothedRTT and CongestionWindow are the latest
// values (the largest among sessions for an endpoint).
type Stats struct {
	Counters         [NumCounters]uint64 // indexed by Counter
	SmoothedRTT      time.Duration
	CongestionWindow uint64 // bytes
	BytesInFlight    uint64 // bytes sent and neither acknowledged nor declared lost
	// DatagramSize is the largest datagram (UDP payload) the session sends
	// now, as datagram size discovery confirmed it (the largest among
	// sessions for an endpoint).
	DatagramSize int
	// BufferBytes is what the session's stream buffers hold, received and
	// written, as charged to Config.MaxMemory (summed over sessions).
	BufferBytes uint64
}

// Get returns the value of counter c.
func (s *Stats) Get(c Counter) uint64 { return s.Counters[c] }

// Add adds o to s as an endpoint sums its sessions: counters and bytes in
// flight are added; the smoothed RTT and the congestion window are the larger.
func (s *Stats) Add(o Stats) {
	for i, v := range o.Counters {
		s.Counters[i] += v
	}
	s.SmoothedRTT = max(s.SmoothedRTT, o.SmoothedRTT)
	s.CongestionWindow = max(s.CongestionWindow, o.CongestionWindow)
	s.BytesInFlight += o.BytesInFlight
	s.BufferBytes += o.BufferBytes
	s.DatagramSize = max(s.DatagramSize, o.DatagramSize)
}

// counters are the atomically updated form of Stats.
type counters struct {
	c                    [NumCounters]atomic.Uint64
	srtt, cwnd, inflight atomic.Int64
	dgram                atomic.Int64 // DatagramSize
	bufs                 atomic.Int64 // BufferBytes
}

// inc adds one to counter k.
func (c *counters) inc(k Counter) { c.c[k].Add(1) }

// add adds n to counter k.
func (c *counters) add(k Counter, n uint64) { c.c[k].Add(n) }

// addTo adds the counters to s and folds the gauges in as Stats.Add does.
func (c *counters) addTo(s *Stats) {
	for i := range c.c {
		s.Counters[i] += c.c[i].Load()
	}
	s.SmoothedRTT = max(s.SmoothedRTT, time.Duration(c.srtt.Load()))
	s.CongestionWindow = max(s.CongestionWindow, uint64(c.cwnd.Load()))
	s.BytesInFlight += uint64(c.inflight.Load())
	s.BufferBytes += uint64(c.bufs.Load())
	s.DatagramSize = max(s.DatagramSize, int(c.dgram.Load()))
}

// fold adds the counts (not the gauges) of o, a finished session's, to c
// (an endpoint's).
func (c *counters) fold(o *counters) {
	for i := range o.c {
		c.c[i].Add(o.c[i].Load())
	}
}

// addStats adds the counts of s (not the gauges) to c.
func (c *counters) addStats(s *Stats) {
	for i, v := range s.Counters {
		c.c[i].Add(v)
	}
}
