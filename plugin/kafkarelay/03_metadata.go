package kafkarelay

import "github.com/twmb/franz-go/pkg/kmsg"

// Metadata (key 3), every version: the broker list is the whole cluster.
func init() {
	register(rewriter{key: 3, since: 0, rewrite: func(m mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.MetadataResponse)
		all := make([]brokerAddr, len(resp.Brokers))
		for i, b := range resp.Brokers {
			all[i] = brokerAddr{b.NodeID, b.Host, b.Port}
		}
		m.brokers(all)
		changed := false
		for i := range resp.Brokers {
			b := &resp.Brokers[i]
			changed = mapAddr(m, b.NodeID, &b.Host, &b.Port) || changed
		}
		return changed
	}})
}

// mapAddr rewrites one broker address through m and reports whether it
// changed.
func mapAddr(m mapper, node int32, host *string, port *int32) bool {
	if node < 0 || *host == "" {
		return false // no broker (an error entry)
	}
	h, p, ok := m.local(node, *host, *port)
	if !ok || (h == *host && p == *port) {
		return false
	}
	*host, *port = h, p
	return true
}
