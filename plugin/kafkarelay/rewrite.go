package kafkarelay

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rewriter rewrites the broker addresses in one response type.
type rewriter struct {
	key int16
	// since is the first version whose responses carry broker addresses;
	// older responses pass unparsed.
	since int16
	// rewrite maps the addresses in resp through m and reports whether it
	// changed anything.
	rewrite func(m mapper, resp kmsg.Response) bool
}

// mapper turns a broker's address into the relay's listener for it.
type mapper interface {
	// local returns the advertised host and port of the listener for
	// node at host:port, opening it if needed; ok is false when there is
	// none (the address is then left alone).
	local(node int32, host string, port int32) (lhost string, lport int32, ok bool)
	// brokers reports the full broker list of the cluster (Metadata,
	// DescribeCluster): listeners of brokers not in it are closed.
	brokers(nodes []brokerAddr)
}

type brokerAddr struct {
	node int32
	host string
	port int32
}

var rewriters = map[int16]rewriter{}

func register(rw rewriter) {
	if _, dup := rewriters[rw.key]; dup {
		panic(fmt.Sprintf("kafkarelay: rewriter for key %d registered twice", rw.key))
	}
	rewriters[rw.key] = rw
}

// tracked reports whether responses to a request of key and version need
// parsing.
func tracked(key, version int16) bool {
	rw, ok := rewriters[key]
	return ok && version >= rw.since
}

// rewriteResponse parses body (the response after its correlation ID) as
// the response to key at version, rewrites it through m and returns the new
// body, or nil when nothing changed. A body that does not parse is an
// error; the caller then passes it unchanged.
func rewriteResponse(m mapper, key, version int16, body []byte) ([]byte, error) {
	rw, ok := rewriters[key]
	if !ok || version < rw.since {
		return nil, nil
	}
	resp := kmsg.ResponseForKey(key)
	if resp == nil || version > resp.MaxVersion() {
		return nil, fmt.Errorf("kafkarelay: key %d version %d is not known to kmsg", key, version)
	}
	resp.SetVersion(version)
	b := body
	var hdrTags []byte
	// Flexible responses have a header with tagged fields (response header
	// v1), except ApiVersions, whose response header is always v0.
	if resp.IsFlexible() && key != 18 {
		r := kbin.Reader{Src: b}
		kmsg.SkipTags(&r)
		if err := r.Complete(); err != nil {
			return nil, fmt.Errorf("kafkarelay: key %d version %d: response header tags: %w", key, version, err)
		}
		hdrTags, b = b[:len(b)-len(r.Src)], r.Src
	}
	if err := resp.ReadFrom(b); err != nil {
		return nil, fmt.Errorf("kafkarelay: parse response key %d version %d (%d bytes): %w", key, version, len(body), err)
	}
	if !rw.rewrite(m, resp) {
		return nil, nil
	}
	out := make([]byte, 0, len(body)+64)
	out = append(out, hdrTags...)
	return resp.AppendTo(out), nil
}
