package kafkarelay

import "github.com/twmb/franz-go/pkg/kmsg"

// Fetch (key 1) v16+: the KIP-951 node endpoints of new leaders, sent with
// NOT_LEADER_OR_FOLLOWER. A response without them is forwarded as it came.
func init() {
	register(rewriter{key: 1, since: 16, rewrite: func(m mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.FetchResponse)
		changed := false
		for i := range resp.Brokers {
			b := &resp.Brokers[i]
			changed = mapAddr(m, b.NodeID, &b.Host, &b.Port) || changed
		}
		return changed
	}})
}
