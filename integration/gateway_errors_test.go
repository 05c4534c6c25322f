package integration

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/dpdk"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// TestGatewayUnreachableUpstream: a stream whose upstream cannot be reached
// is reset with plugin.CodeUpstreamUnreachable (nothing is written into
// it), and the gateway keeps serving the
// Kafka client whose connections were already up.
func TestGatewayUnreachableUpstream(t *testing.T) {
	broker := kxTCPBroker(t, "unreach", 1)
	fwd := newKxForwarder(t, broker) // the gateway's upstream; can stop accepting
	gw, gwURL := kxGateway(t, "raptor://127.0.0.1:0", "tcp://"+fwd.Addr())
	d, err := kafka.NewDialer(kafka.WithBrokerMap(map[string]string{broker: gwURL}))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), d.Opt(), kgo.DefaultProduceTopic("unreach"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}

	fwd.StopAccepting() // the upstream is now unreachable for new streams
	tr := plugin.New()
	defer tr.Close()
	c, err := tr.Dial(ctx, gwURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte{0, 0, 0, 1, 'x'}) // the gateway dials its upstream on the first bytes
	n, err := io.Copy(io.Discard, c)
	var se *reliable.StreamError
	if n != 0 || !errors.As(err, &se) || !se.Remote || se.Code != plugin.CodeUpstreamUnreachable {
		t.Fatalf("stream to a gateway whose upstream is down: %d bytes, %v; want a reset with code %#x and no bytes", n, err, plugin.CodeUpstreamUnreachable)
	}
	t.Logf("client stream got: %v", err)

	// The established client keeps working through the same gateway.
	for i := 0; i < 50; i++ {
		if err := cl.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
			t.Fatalf("produce after the failed stream: %v", err)
		}
	}
	if st := gw.Stats(); st.UpstreamErrors != 1 {
		t.Fatalf("gateway stats %+v", st)
	}
}

// TestMalformedSchemeErrors: every entry point names the accepted schemes.
func TestMalformedSchemeErrors(t *testing.T) {
	const accepted = "accepted schemes: tcp://, raptor://, raptor+dpdk://"
	tr := plugin.New()
	defer tr.Close()
	_, err1 := tr.Dial(t.Context(), "raptr://127.0.0.1:9092")
	_, err2 := tr.Listen("127.0.0.1:9092")
	_, err3 := plugin.NewRelay(plugin.RelayConfig{Upstreams: []string{"kafka://127.0.0.1:9092"}})
	_, err4 := kafka.NewDialer(kafka.WithGateways("b:9092", "raptor://gw1:9092", "udp://gw2:9092"))
	_, err5 := plugin.NewFailoverDialer(tr, []string{"http://x:1"}, plugin.FailoverConfig{})
	for i, err := range []error{err1, err2, err3, err4, err5} {
		var se *plugin.SchemeError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), accepted) {
			t.Errorf("case %d: %v; want a *plugin.SchemeError naming the %s", i+1, err, accepted)
		}
	}
	t.Logf("example: %v", err1)
	// raptor+dpdk is accepted as a scheme; without a DPDK build it says how to
	// get one, with one it names the missing device parameter.
	_, err := tr.Dial(t.Context(), "raptor+dpdk://127.0.0.1:9092")
	var pe *plugin.ParamError
	switch {
	case !dpdk.Built && !errors.Is(err, plugin.ErrDPDKUnavailable):
		t.Errorf("raptor+dpdk without DPDK: %v, want ErrDPDKUnavailable", err)
	case dpdk.Built && (!errors.As(err, &pe) || !strings.Contains(err.Error(), "dev")):
		t.Errorf("raptor+dpdk without dev=: %v, want a *plugin.ParamError naming dev", err)
	}
	var ae *plugin.AddrError
	if _, err := tr.Dial(t.Context(), "raptor://127.0.0.1"); !errors.As(err, &ae) {
		t.Errorf("missing port: %v", err)
	}
}
