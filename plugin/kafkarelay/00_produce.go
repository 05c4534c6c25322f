package kafkarelay

import "github.com/twmb/franz-go/pkg/kmsg"

// Produce (key 0) v10+: the KIP-951 node endpoints of new leaders, sent
// with NOT_LEADER_OR_FOLLOWER.
func init() {
	register(rewriter{key: 0, since: 10, rewrite: func(m mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.ProduceResponse)
		changed := false
		for i := range resp.Brokers {
			b := &resp.Brokers[i]
			changed = mapAddr(m, b.NodeID, &b.Host, &b.Port) || changed
		}
		return changed
	}})
}
