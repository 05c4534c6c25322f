package kafkarelay

import "github.com/twmb/franz-go/pkg/kmsg"

// FindCoordinator (key 10): the coordinator (v0-v3) or the list of
// coordinators, one per key (v4+).
func init() {
	register(rewriter{key: 10, since: 0, rewrite: func(m mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.FindCoordinatorResponse)
		changed := false
		if resp.Version < 4 {
			if resp.ErrorCode == 0 {
				changed = mapAddr(m, resp.NodeID, &resp.Host, &resp.Port)
			}
			return changed
		}
		for i := range resp.Coordinators {
			c := &resp.Coordinators[i]
			if c.ErrorCode == 0 {
				changed = mapAddr(m, c.NodeID, &c.Host, &c.Port) || changed
			}
		}
		return changed
	}})
}
