package kafkarelay

import "github.com/twmb/franz-go/pkg/kmsg"

// clampedKeys caps keys whose newer versions carry addresses this package
// does not rewrite: DescribeQuorum (55) v2+ lists controller listeners.
var clampedKeys = map[int16]int16{55: 1}

// ApiVersions (key 18): every key whose responses are rewritten is capped
// at the highest version kmsg can parse, so a client never picks a version
// whose addresses would pass unseen; clampedKeys are capped as listed.
func init() {
	register(rewriter{key: 18, since: 0, rewrite: func(_ mapper, r kmsg.Response) bool {
		resp := r.(*kmsg.ApiVersionsResponse)
		changed := false
		for i := range resp.ApiKeys {
			k := &resp.ApiKeys[i]
			limit, ok := clampedKeys[k.ApiKey]
			if _, rw := rewriters[k.ApiKey]; rw {
				limit, ok = kmsg.ResponseForKey(k.ApiKey).MaxVersion(), true
			}
			if ok && k.MaxVersion > limit {
				k.MaxVersion = max(limit, k.MinVersion)
				changed = true
			}
		}
		return changed
	}})
}
