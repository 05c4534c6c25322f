package kafkarelay

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("test ended waiting for %s", what)
		}
	}
}

// freeRange returns n consecutive TCP ports free on 127.0.0.1 just now.
func freeRange(t *testing.T, n int) []int {
	t.Helper()
	for try := 0; try < 50; try++ {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for i := 1; i < n && base+i <= 65535; i++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+itoa(int32(base+i)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			out := make([]int, n)
			for i := range out {
				out[i] = base + i
			}
			return out
		}
	}
	t.Fatalf("no %d consecutive free ports in 50 tries", n)
	return nil
}

// metadata asks the relay for the cluster's brokers over a fresh client.
func metadata(t *testing.T, ctx context.Context, addr string) []kmsg.MetadataResponseBroker {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Brokers
}

// TestRelayOpensAndClosesBrokerListeners: brokers get a listener each in
// the configured port range as they appear in metadata, and a broker that
// leaves the cluster loses its listener.
func TestRelayOpensAndClosesBrokerListeners(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ports := freeRange(t, 3)
	r, err := New(Config{Listen: "tcp://127.0.0.1:0", Upstreams: []string{"tcp://" + c.ListenAddrs()[0]}, Advertise: "localhost",
		BrokerPorts: itoa(int32(ports[0])) + "-" + itoa(int32(ports[2]))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	brokers := metadata(t, ctx, r.BoundAddr().String())
	if len(brokers) != 3 {
		t.Fatalf("metadata lists %d brokers, want 3", len(brokers))
	}
	for i, b := range brokers {
		if b.Host != "localhost" || int(b.Port) < ports[0] || int(b.Port) > ports[2] {
			t.Errorf("broker %d at %s:%d; want localhost in %d-%d", i, b.Host, b.Port, ports[0], ports[2])
		}
	}
	if got := r.Brokers(); len(got) != 3 || got[0].Advertised != "localhost:"+itoa(int32(ports[0])) {
		t.Fatalf("brokers %+v; node 0 should have the first port", got)
	}
	gone := r.Brokers()[2]
	if err := c.RemoveNode(gone.NodeID); err != nil {
		t.Fatal(err)
	}
	if got := metadata(t, ctx, r.BoundAddr().String()); len(got) != 2 {
		t.Fatalf("after RemoveNode: %d brokers in metadata", len(got))
	}
	waitFor(t, "the departed broker's listener closed", func() bool { return len(r.Brokers()) == 2 && r.Stats().Closed == 1 })
	if c, err := net.DialTimeout("tcp", gone.Bound, time.Second); err == nil {
		c.Close()
		t.Fatalf("listener %s of the departed broker still accepts", gone.Bound)
	}
	st := r.Stats()
	if st.Opened != 3 || st.Rewritten == 0 || st.ParseFailures != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Listen: "tcp://127.0.0.1:0"},
		{Listen: "udp://127.0.0.1:0", Upstreams: []string{"tcp://127.0.0.1:1"}},
		{Listen: "tcp://127.0.0.1:0", Upstreams: []string{"tcp://127.0.0.1:1"}, BrokerPorts: "9-3"},
		{Listen: "tcp://127.0.0.1:0", Upstreams: []string{"tcp://127.0.0.1:1"}, BrokerPorts: "x"},
		{Listen: "tcp://127.0.0.1:0", Upstreams: []string{"tcp://127.0.0.1:1"}, BrokerScheme: "http"},
		{Listen: "tcp://127.0.0.1:65535", Upstreams: []string{"tcp://127.0.0.1:1"}},
	} {
		if r, err := New(cfg); err == nil {
			r.Close()
			t.Errorf("%+v accepted", cfg)
		}
	}
}
