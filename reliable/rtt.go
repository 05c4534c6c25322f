package reliable

import "time"

// RTTStats is a session's round-trip-time estimate as RFC 6298 and RFC 9002
// §5 compute it: smoothed RTT and its mean deviation from samples taken on
// newly acknowledged packets, minus the peer's reported ACK delay (clamped
// to its max_ack_delay). A [CongestionControl] receives it read-only: its
// fields are unexported and only recovery updates it.
type RTTStats struct {
	latest, smoothed, variance, min time.Duration
	hasSample                       bool
}

const initialRTT = 100 * time.Millisecond

// update takes one sample. ackDelay must already be clamped by the caller.
func (r *RTTStats) update(sample, ackDelay time.Duration) {
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

// HasSample reports whether any RTT sample was taken yet.
func (r *RTTStats) HasSample() bool { return r.hasSample }

// SmoothedRTT is the smoothed RTT, or the initial estimate (100 ms) before
// any sample.
func (r *RTTStats) SmoothedRTT() time.Duration {
	if !r.hasSample {
		return initialRTT
	}
	return r.smoothed
}

// LatestRTT is the latest sample (zero before any).
func (r *RTTStats) LatestRTT() time.Duration { return r.latest }

// MinRTT is the smallest sample, ACK delay included (zero before any).
func (r *RTTStats) MinRTT() time.Duration { return r.min }

// MeanDeviation is the RTT's mean deviation (rttvar).
func (r *RTTStats) MeanDeviation() time.Duration { return r.variance }

// rto is the retransmission timeout before back-off.
func (r *RTTStats) rto(minRTO, maxAckDelay time.Duration) time.Duration {
	if !r.hasSample {
		return max(minRTO, 2*initialRTT)
	}
	return max(minRTO, r.smoothed+max(4*r.variance, time.Millisecond/4)+maxAckDelay)
}
