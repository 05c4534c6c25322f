package kafkarelay

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeCluster (key 60), every version: the broker list is the whole
// cluster. (v1+ may describe controllers instead, EndpointType 2; those are
// not brokers this relay fronts and are left alone.)
func init() {
	register(rewriter{key: 60, since: 0, rewrite: func(m mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.DescribeClusterResponse)
		if resp.EndpointType == 2 {
			return false
		}
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
