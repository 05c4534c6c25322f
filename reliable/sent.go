package reliable

import "time"

// chunk kinds recorded in a sent packet, for acknowledgement and loss.
const (
	chunkData  uint8 = iota // stream bytes (possibly empty) and maybe FIN
	chunkReset              // RESET_STREAM
	chunkStop               // STOP_SENDING
	chunkMSD                // MAX_STREAM_DATA
)

// chunk is one stream-related frame of a sent packet.
type chunk struct {
	stream uint64
	off    uint64
	n      uint32
	kind   uint8
	fin    bool
}

// control flags of a sent packet.
const (
	ctlMaxData uint8 = 1 << iota
	ctlMaxStreams
	ctlPing
	ctlPostHandshake // NEW_TOKEN and the session ticket (handshake.go)
	ctlProbe         // a datagram size probe (pmtud.go): its loss is no congestion signal
	ctlAck           // carried an ACK frame up to ackLargest (received.go ackFloor)
)

const maxChunksPerPacket = 6

// sentPacket is the record of an ack-eliciting packet in flight.
type sentPacket struct {
	pn      uint64
	sentAt  time.Time
	size    int
	chunks  [maxChunksPerPacket]chunk
	nchunks uint8
	ctl     uint8
	done    bool // acknowledged or declared lost
	// cwndLimited: at least half the congestion window was in flight when
	// it left, so its acknowledgement may grow the window (RFC 9002 §7.8).
	cwndLimited bool
	// ackLargest: with ctlAck, the largest packet number its ACK frame
	// acknowledged.
	ackLargest uint64
}

// sentHistory holds ack-eliciting packets in packet-number order in a ring.
type sentHistory struct {
	ring  []sentPacket
	head  int // index of the oldest
	count int
}

func (h *sentHistory) len() int { return h.count }

func (h *sentHistory) at(i int) *sentPacket { return &h.ring[(h.head+i)&(len(h.ring)-1)] }

// push appends a record and returns it for filling.
func (h *sentHistory) push() *sentPacket {
	if h.count == len(h.ring) {
		n := max(16, 2*len(h.ring))
		nr := make([]sentPacket, n)
		for i := 0; i < h.count; i++ {
			nr[i] = *h.at(i)
		}
		h.ring, h.head = nr, 0
	}
	p := h.at(h.count)
	h.count++
	*p = sentPacket{}
	return p
}

// popDone drops finished records from the front.
func (h *sentHistory) popDone() {
	for h.count > 0 && h.at(0).done {
		h.head = (h.head + 1) & (len(h.ring) - 1)
		h.count--
	}
}

// search returns the index of the first record with pn >= x.
func (h *sentHistory) search(x uint64) int {
	lo, hi := 0, h.count
	for lo < hi {
		m := (lo + hi) / 2
		if h.at(m).pn < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// oldest returns the oldest packet still outstanding.
func (h *sentHistory) oldest() *sentPacket {
	for i := 0; i < h.count; i++ {
		if p := h.at(i); !p.done {
			return p
		}
	}
	return nil
}
