package reliable

import "time"

// rttStats estimates the round-trip time as RFC 6298 and RFC 9002 §5 do:
// smoothed RTT and its variance from samples taken on newly acknowledged
// packets, minus the peer's reported ACK delay.
type rttStats struct {
	latest, smoothed, variance, min time.Duration
	hasSample                       bool
}

const initialRTT = 100 * time.Millisecond

func (r *rttStats) update(sample, ackDelay time.Duration) {
	if sample <= 0 {
		sample = time.Microsecond
	}
	r.latest = sample
	if !r.hasSample || sample < r.min {
		r.min = sample
	}
	if sample-ackDelay >= r.min {
		sample -= ackDelay
	}
	if !r.hasSample {
		r.hasSample = true
		r.smoothed = sample
		r.variance = sample / 2
		return
	}
	d := r.smoothed - sample
	if d < 0 {
		d = -d
	}
	r.variance = (3*r.variance + d) / 4
	r.smoothed = (7*r.smoothed + sample) / 8
}

// srtt returns the smoothed RTT, or the initial estimate before any sample.
func (r *rttStats) srtt() time.Duration {
	if !r.hasSample {
		return initialRTT
	}
	return r.smoothed
}

// rto is the retransmission timeout before back-off.
func (r *rttStats) rto(minRTO, maxAckDelay time.Duration) time.Duration {
	if !r.hasSample {
		return max(minRTO, 2*initialRTT)
	}
	return max(minRTO, r.smoothed+max(4*r.variance, time.Millisecond/4)+maxAckDelay)
}

// lossDelay is the time threshold of loss detection: 9/8 of the larger of
// smoothed and latest RTT, at least 1/4 ms (RFC 9002 §6.1.2).
func (r *rttStats) lossDelay() time.Duration {
	return max(time.Millisecond/4, max(r.srtt(), r.latest)*9/8)
}
