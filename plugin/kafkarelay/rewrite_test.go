package kafkarelay

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeMapper maps every broker to 10.9.9.9:(20000 + node ID) and records
// the full broker lists it saw.
type fakeMapper struct{ lists [][]brokerAddr }

func (m *fakeMapper) local(node int32, _ string, _ int32) (string, int32, bool) {
	return "10.9.9.9", 20000 + node, true
}
func (m *fakeMapper) brokers(all []brokerAddr) { m.lists = append(m.lists, all) }

// pipeConn is an upstream whose Read replays resp and whose Write
// collects what the relay forwards.
type pipeConn struct {
	r       io.Reader
	written bytes.Buffer
}

func (p *pipeConn) Read(b []byte) (int, error)       { return p.r.Read(b) }
func (p *pipeConn) Write(b []byte) (int, error)      { return p.written.Write(b) }
func (p *pipeConn) Close() error                     { return nil }
func (p *pipeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (p *pipeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (p *pipeConn) SetDeadline(time.Time) error      { return nil }
func (p *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (p *pipeConn) SetWriteDeadline(time.Time) error { return nil }
func (p *pipeConn) CloseWrite() error                { return nil }

// frameResponse encodes resp as a broker sends it: length, correlation ID,
// header tags when flexible (not for ApiVersions), body.
func frameResponse(resp kmsg.Response, corr int32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[4:], uint32(corr))
	if resp.IsFlexible() && resp.Key() != 18 {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func str(s string) *string { return &s }

// responses with broker addresses, one per rewritten type and version
// range, each with its request's key and version.
func sampleResponses() []kmsg.Response {
	var out []kmsg.Response
	for _, v := range []int16{0, 8, 12, kmsg.NewPtrMetadataResponse().MaxVersion()} {
		r := kmsg.NewPtrMetadataResponse()
		r.Version = v
		for i := int32(0); i < 3; i++ {
			b := kmsg.NewMetadataResponseBroker()
			b.NodeID, b.Host, b.Port, b.Rack = i, "127.0.0.1", 19092+i, str("r1")
			r.Brokers = append(r.Brokers, b)
		}
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = str("t")
		p := kmsg.NewMetadataResponseTopicPartition()
		p.Leader, p.Replicas = 2, []int32{2}
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		out = append(out, r)
	}
	for _, v := range []int16{0, 3, 4, kmsg.NewPtrFindCoordinatorResponse().MaxVersion()} {
		r := kmsg.NewPtrFindCoordinatorResponse()
		r.Version = v
		r.NodeID, r.Host, r.Port = 1, "127.0.0.1", 19093
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = "g", 1, "127.0.0.1", 19093
		r.Coordinators = append(r.Coordinators, c)
		out = append(out, r)
	}
	for _, v := range []int16{0, kmsg.NewPtrDescribeClusterResponse().MaxVersion()} {
		r := kmsg.NewPtrDescribeClusterResponse()
		r.Version = v
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port = 0, "127.0.0.1", 19092
		r.Brokers = append(r.Brokers, b)
		out = append(out, r)
	}
	{
		r := kmsg.NewPtrProduceResponse()
		r.Version = 10
		b := kmsg.NewProduceResponseBroker()
		b.NodeID, b.Host, b.Port = 2, "127.0.0.1", 19094
		r.Brokers = append(r.Brokers, b)
		out = append(out, r)
	}
	{
		r := kmsg.NewPtrFetchResponse()
		r.Version = 16
		b := kmsg.NewFetchResponseBroker()
		b.NodeID, b.Host, b.Port = 2, "127.0.0.1", 19094
		r.Brokers = append(r.Brokers, b)
		t := kmsg.NewFetchResponseTopic()
		t.Topic = "t"
		p := kmsg.NewFetchResponseTopicPartition()
		p.RecordBatches = []byte("opaque record batches")
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		out = append(out, r)
	}
	{
		r := kmsg.NewPtrShareFetchResponse()
		r.Version = r.MaxVersion()
		b := kmsg.NewShareFetchResponseNodeEndpoint()
		b.NodeID, b.Host, b.Port = 1, "127.0.0.1", 19093
		r.NodeEndpoints = append(r.NodeEndpoints, b)
		out = append(out, r)
	}
	{
		r := kmsg.NewPtrApiVersionsResponse()
		r.Version = 3
		for _, k := range []struct{ key, max int16 }{{3, 99}, {1, 99}, {55, 2}, {18, 4}, {999, 7}} {
			ak := kmsg.NewApiVersionsResponseApiKey()
			ak.ApiKey, ak.MaxVersion = k.key, k.max
			r.ApiKeys = append(r.ApiKeys, ak)
		}
		out = append(out, r)
	}
	return out
}

// addresses returns every broker host:port in resp.
func addresses(resp kmsg.Response) []string {
	hp := func(h string, p int32) string { return net.JoinHostPort(h, itoa(p)) }
	var out []string
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for _, b := range r.Brokers {
			out = append(out, hp(b.Host, b.Port))
		}
	case *kmsg.FindCoordinatorResponse:
		if r.Version < 4 {
			out = append(out, hp(r.Host, r.Port))
		}
		for _, c := range r.Coordinators {
			if r.Version >= 4 {
				out = append(out, hp(c.Host, c.Port))
			}
		}
	case *kmsg.DescribeClusterResponse:
		for _, b := range r.Brokers {
			out = append(out, hp(b.Host, b.Port))
		}
	case *kmsg.ProduceResponse:
		for _, b := range r.Brokers {
			out = append(out, hp(b.Host, b.Port))
		}
	case *kmsg.FetchResponse:
		for _, b := range r.Brokers {
			out = append(out, hp(b.Host, b.Port))
		}
	case *kmsg.ShareFetchResponse:
		for _, b := range r.NodeEndpoints {
			out = append(out, hp(b.Host, b.Port))
		}
	}
	return out
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

// TestConnRewritesEveryType sends each sample's request through the
// wrapper and its response back, and checks that every broker address
// now names the relay and nothing else changed.
func TestConnRewritesEveryType(t *testing.T) {
	for i, resp := range sampleResponses() {
		corr := int32(100 + i)
		var wire bytes.Buffer
		// An unrelated response first (not tracked): passes byte for byte.
		other := kmsg.NewPtrHeartbeatResponse()
		other.Version = 4
		wire.Write(frameResponse(other, 7))
		wire.Write(frameResponse(resp, corr))
		up := &pipeConn{r: &wire}
		m := &fakeMapper{}
		c := newConn(up, m, func(err error) { t.Errorf("parse failure: %v", err) })
		req := resp.RequestKind()
		req.SetVersion(resp.GetVersion())
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Version = 4
		f := kmsg.NewRequestFormatter()
		reqs := f.AppendRequest(nil, hb, 7)
		reqs = append(reqs, f.AppendRequest(nil, req, corr)...)           // it assumes an empty dst
		for _, chunk := range [][]byte{reqs[:3], reqs[3:11], reqs[11:]} { // split mid-header
			if _, err := c.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(up.written.Bytes(), reqs) {
			t.Fatalf("%T: requests were changed on the way up", resp)
		}
		got, err := io.ReadAll(readerOf(c))
		if err != nil {
			t.Fatal(err)
		}
		first := frameResponse(other, 7)
		if !bytes.HasPrefix(got, first) {
			t.Fatalf("%T: untracked response changed", resp)
		}
		got = got[len(first):]
		if n := int(binary.BigEndian.Uint32(got)); n != len(got)-4 {
			t.Fatalf("%T v%d: length prefix %d, frame %d", resp, resp.GetVersion(), n, len(got)-4)
		}
		if corrGot := int32(binary.BigEndian.Uint32(got[4:])); corrGot != corr {
			t.Fatalf("correlation ID %d, want %d", corrGot, corr)
		}
		out := kmsg.ResponseForKey(resp.Key())
		out.SetVersion(resp.GetVersion())
		body := got[8:]
		if out.IsFlexible() && out.Key() != 18 {
			body = body[1:]
		}
		if err := out.ReadFrom(body); err != nil {
			t.Fatalf("%T v%d: rewritten response does not parse: %v", resp, resp.GetVersion(), err)
		}
		for _, a := range addresses(out) {
			if host, _, _ := net.SplitHostPort(a); host != "10.9.9.9" {
				t.Errorf("%T v%d: address %s not rewritten", resp, resp.GetVersion(), a)
			}
		}
		if av, ok := out.(*kmsg.ApiVersionsResponse); ok {
			want := map[int16]int16{3: kmsg.NewPtrMetadataResponse().MaxVersion(), 1: kmsg.NewPtrFetchResponse().MaxVersion(), 55: 1, 18: min(4, kmsg.NewPtrApiVersionsResponse().MaxVersion()), 999: 7}
			for _, k := range av.ApiKeys {
				if k.MaxVersion != want[k.ApiKey] {
					t.Errorf("ApiVersions key %d max %d, want %d", k.ApiKey, k.MaxVersion, want[k.ApiKey])
				}
			}
		}
		if f, ok := out.(*kmsg.FetchResponse); ok && string(f.Topics[0].Partitions[0].RecordBatches) != "opaque record batches" {
			t.Errorf("fetch records changed: %q", f.Topics[0].Partitions[0].RecordBatches)
		}
		_, full := resp.(*kmsg.MetadataResponse)
		if full && (len(m.lists) != 1 || len(m.lists[0]) != 3) {
			t.Errorf("metadata: broker lists seen %v, want one of 3", m.lists)
		}
	}
}

// readerOf reads c until EOF in small pieces, as the relay's copier does.
func readerOf(c *conn) io.Reader {
	return readerFunc(func(p []byte) (int, error) { return c.Read(p[:min(len(p), 5)]) })
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestConnFallsBackToRawOnBadFraming: bytes that are not Kafka framing
// pass unchanged.
func TestConnFallsBackToRawOnBadFraming(t *testing.T) {
	junk := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\nmore bytes after")
	c := newConn(&pipeConn{r: bytes.NewReader(junk)}, &fakeMapper{}, nil)
	c.Write(junk)
	got, err := io.ReadAll(readerOf(c))
	if err != nil || !bytes.Equal(got, junk) {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestConnPendingBounded: requests never answered (acks=0 produce) do not
// grow the connection's memory without bound.
func TestConnPendingBounded(t *testing.T) {
	c := newConn(&pipeConn{r: bytes.NewReader(nil)}, &fakeMapper{}, nil)
	f := kmsg.NewRequestFormatter()
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks = 10, 0
	for i := int32(0); i < 5*maxPending; i++ {
		c.Write(f.AppendRequest(nil, req, i))
	}
	if len(c.pending) > maxPending || len(c.order) > 2*maxPending {
		t.Fatalf("pending %d, order %d; bound %d", len(c.pending), len(c.order), maxPending)
	}
}

// FuzzRewriteResponse: any bytes as any tracked response never panic, and
// a rewritten response parses again.
func FuzzRewriteResponse(f *testing.F) {
	for _, r := range sampleResponses() {
		b := frameResponse(r, 1)
		f.Add(r.Key(), r.GetVersion(), b[8:])
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		out, err := rewriteResponse(&fakeMapper{}, key, version, body)
		if err != nil || out == nil {
			return
		}
		if _, err2 := rewriteResponse(&fakeMapper{}, key, version, out); err2 != nil {
			t.Fatalf("key %d v%d: rewritten response does not parse again: %v", key, version, err2)
		}
	})
}
