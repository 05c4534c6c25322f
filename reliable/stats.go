package reliable

import (
	"sync/atomic"
	"time"
)

// Stats are the counters of a session or, summed, of an endpoint. All fields
// count since creation; RTT and CongestionWindow are the latest values (the
// largest among sessions for an endpoint).
type Stats struct {
	PacketsSent, PacketsReceived   uint64
	BytesSent, BytesReceived       uint64 // UDP payload bytes
	StreamBytesSent                uint64 // new stream bytes, first transmissions
	StreamBytesReceived            uint64 // new stream bytes delivered in order
	Retransmits                    uint64 // packets declared lost whose contents were resent
	RTOs                           uint64 // retransmission timeouts
	NaksSent, NaksReceived         uint64
	AcksSent, AcksReceived         uint64
	Duplicates                     uint64 // duplicate packets received
	DropsMalformed                 uint64 // unparsable datagrams or frames
	DropsUnknownSession            uint64 // no session for the connection ID
	DropsAddressMismatch           uint64 // datagram from another address than the session's peer
	DropsBadCookie                 uint64 // Initial with an invalid or expired cookie
	DropsVersion                   uint64 // unsupported version (answered with VersionNegotiation)
	DropsSessionLimit              uint64 // Initial refused because MaxSessions was reached
	DropsAcceptQueue               uint64 // streams refused because the accept backlog was full
	DropsAuth                      uint64 // packets that failed authentication (forged, modified, or no keys yet)
	SessionsOpened, SessionsClosed uint64
	StreamsOpened, StreamsClosed   uint64
	SmoothedRTT                    time.Duration
	CongestionWindow               uint64 // bytes
	BytesInFlight                  uint64
}

// counters are the atomically updated form of Stats.
type counters struct {
	packetsSent, packetsReceived     atomic.Uint64
	bytesSent, bytesReceived         atomic.Uint64
	streamBytesSent, streamBytesRecv atomic.Uint64
	retransmits, rtos                atomic.Uint64
	naksSent, naksReceived           atomic.Uint64
	acksSent, acksReceived           atomic.Uint64
	duplicates                       atomic.Uint64
	dropsMalformed                   atomic.Uint64
	dropsUnknownSession              atomic.Uint64
	dropsAddressMismatch             atomic.Uint64
	dropsBadCookie                   atomic.Uint64
	dropsVersion                     atomic.Uint64
	dropsSessionLimit                atomic.Uint64
	dropsAcceptQueue                 atomic.Uint64
	dropsAuth                        atomic.Uint64
	sessionsOpened, sessionsClosed   atomic.Uint64
	streamsOpened, streamsClosed     atomic.Uint64
	srtt, cwnd, inflight             atomic.Int64
}

func (c *counters) addTo(s *Stats) {
	s.PacketsSent += c.packetsSent.Load()
	s.PacketsReceived += c.packetsReceived.Load()
	s.BytesSent += c.bytesSent.Load()
	s.BytesReceived += c.bytesReceived.Load()
	s.StreamBytesSent += c.streamBytesSent.Load()
	s.StreamBytesReceived += c.streamBytesRecv.Load()
	s.Retransmits += c.retransmits.Load()
	s.RTOs += c.rtos.Load()
	s.NaksSent += c.naksSent.Load()
	s.NaksReceived += c.naksReceived.Load()
	s.AcksSent += c.acksSent.Load()
	s.AcksReceived += c.acksReceived.Load()
	s.Duplicates += c.duplicates.Load()
	s.DropsMalformed += c.dropsMalformed.Load()
	s.DropsUnknownSession += c.dropsUnknownSession.Load()
	s.DropsAddressMismatch += c.dropsAddressMismatch.Load()
	s.DropsBadCookie += c.dropsBadCookie.Load()
	s.DropsVersion += c.dropsVersion.Load()
	s.DropsSessionLimit += c.dropsSessionLimit.Load()
	s.DropsAcceptQueue += c.dropsAcceptQueue.Load()
	s.DropsAuth += c.dropsAuth.Load()
	s.SessionsOpened += c.sessionsOpened.Load()
	s.SessionsClosed += c.sessionsClosed.Load()
	s.StreamsOpened += c.streamsOpened.Load()
	s.StreamsClosed += c.streamsClosed.Load()
	s.SmoothedRTT = max(s.SmoothedRTT, time.Duration(c.srtt.Load()))
	s.CongestionWindow = max(s.CongestionWindow, uint64(c.cwnd.Load()))
	s.BytesInFlight += uint64(c.inflight.Load())
}

// add folds the counters of a finished session into c (an endpoint's).
func (c *counters) add(o *counters) {
	var s Stats
	o.addTo(&s)
	c.addStats(&s)
}

// addStats adds the counts of s (not the gauges) to c.
func (c *counters) addStats(s *Stats) {
	c.packetsSent.Add(s.PacketsSent)
	c.packetsReceived.Add(s.PacketsReceived)
	c.bytesSent.Add(s.BytesSent)
	c.bytesReceived.Add(s.BytesReceived)
	c.streamBytesSent.Add(s.StreamBytesSent)
	c.streamBytesRecv.Add(s.StreamBytesReceived)
	c.retransmits.Add(s.Retransmits)
	c.rtos.Add(s.RTOs)
	c.naksSent.Add(s.NaksSent)
	c.naksReceived.Add(s.NaksReceived)
	c.acksSent.Add(s.AcksSent)
	c.acksReceived.Add(s.AcksReceived)
	c.duplicates.Add(s.Duplicates)
	c.dropsMalformed.Add(s.DropsMalformed)
	c.dropsAddressMismatch.Add(s.DropsAddressMismatch)
	c.dropsUnknownSession.Add(s.DropsUnknownSession)
	c.dropsBadCookie.Add(s.DropsBadCookie)
	c.dropsVersion.Add(s.DropsVersion)
	c.dropsSessionLimit.Add(s.DropsSessionLimit)
	c.dropsAcceptQueue.Add(s.DropsAcceptQueue)
	c.dropsAuth.Add(s.DropsAuth)
	c.streamsOpened.Add(s.StreamsOpened)
	c.sessionsOpened.Add(s.SessionsOpened)
	c.sessionsClosed.Add(s.SessionsClosed)
	c.streamsClosed.Add(s.StreamsClosed)
}

// Add adds o to s as an endpoint sums its sessions: counters and bytes in
// flight are added; the smoothed RTT and the congestion window are the larger.
func (s *Stats) Add(o Stats) {
	s.PacketsSent += o.PacketsSent
	s.PacketsReceived += o.PacketsReceived
	s.BytesSent += o.BytesSent
	s.BytesReceived += o.BytesReceived
	s.StreamBytesSent += o.StreamBytesSent
	s.StreamBytesReceived += o.StreamBytesReceived
	s.Retransmits += o.Retransmits
	s.RTOs += o.RTOs
	s.NaksSent += o.NaksSent
	s.NaksReceived += o.NaksReceived
	s.AcksSent += o.AcksSent
	s.AcksReceived += o.AcksReceived
	s.Duplicates += o.Duplicates
	s.DropsMalformed += o.DropsMalformed
	s.DropsUnknownSession += o.DropsUnknownSession
	s.DropsAddressMismatch += o.DropsAddressMismatch
	s.DropsBadCookie += o.DropsBadCookie
	s.DropsVersion += o.DropsVersion
	s.DropsSessionLimit += o.DropsSessionLimit
	s.DropsAcceptQueue += o.DropsAcceptQueue
	s.DropsAuth += o.DropsAuth
	s.SessionsOpened += o.SessionsOpened
	s.SessionsClosed += o.SessionsClosed
	s.StreamsOpened += o.StreamsOpened
	s.StreamsClosed += o.StreamsClosed
	s.SmoothedRTT = max(s.SmoothedRTT, o.SmoothedRTT)
	s.CongestionWindow = max(s.CongestionWindow, o.CongestionWindow)
	s.BytesInFlight += o.BytesInFlight
}
