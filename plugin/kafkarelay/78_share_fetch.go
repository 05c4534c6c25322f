package kafkarelay

import "github.com/twmb/franz-go/pkg/kmsg"

// ShareFetch (key 78) and ShareAcknowledge (key 79): the node endpoints of
// new leaders (KIP-932).
func init() {
	register(rewriter{key: 78, since: 0, rewrite: func(m mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.ShareFetchResponse)
		changed := false
		for i := range resp.NodeEndpoints {
			b := &resp.NodeEndpoints[i]
			changed = mapAddr(m, b.NodeID, &b.Host, &b.Port) || changed
		}
		return changed
	}})
	register(rewriter{key: 79, since: 0, rewrite: func(m mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.ShareAcknowledgeResponse)
		changed := false
		for i := range resp.NodeEndpoints {
			b := &resp.NodeEndpoints[i]
			changed = mapAddr(m, b.NodeID, &b.Host, &b.Port) || changed
		}
		return changed
	}})
}
