package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/raptormq/raptor/compat/rafka/rafkapb"
	"github.com/raptormq/raptor/plugin"
)

// standIn is a stand-in Rafka broker built from rafka.proto (the Rust broker
// cannot be built here). Every answer is a pure function of the request, so
// the test can compare what crossed the relays with a direct call.
type standIn struct {
	rafkapb.UnimplementedBrokerServiceServer
}

func (standIn) Publish(_ context.Context, r *rafkapb.PublishRequest) (*rafkapb.PublishResponse, error) {
	return &rafkapb.PublishResponse{MessageId: "id-" + r.Topic + "-" + r.Key, Success: true, Message: "stored " + r.Payload, Partition: int32(len(r.Key)), Offset: int64(len(r.Payload))}, nil
}

// standInMessages is how many messages Consume pushes.
const standInMessages = 200

func (standIn) Consume(r *rafkapb.ConsumeRequest, st grpc.ServerStreamingServer[rafkapb.ConsumeResponse]) error {
	for i := range standInMessages {
		if err := st.Send(standInMessage(r, i)); err != nil {
			return err
		}
	}
	return nil
}

func standInMessage(r *rafkapb.ConsumeRequest, i int) *rafkapb.ConsumeResponse {
	return &rafkapb.ConsumeResponse{MessageId: fmt.Sprintf("%s-%d", r.Id, i), Topic: r.Topic, Payload: strings.Repeat("x", i*10), SentAt: 1764576000 + int64(i), Offset: int64(i)}
}

func (standIn) Acknowledge(_ context.Context, r *rafkapb.AcknowledgeRequest) (*rafkapb.AcknowledgeResponse, error) {
	return &rafkapb.AcknowledgeResponse{Success: true, Message: r.ConsumerId + " acked " + r.MessageId + " on " + r.Topic}, nil
}

func (standIn) Register(_ context.Context, r *rafkapb.RegisterRequest) (*rafkapb.RegisterResponse, error) {
	return &rafkapb.RegisterResponse{Success: r.ClientType == rafkapb.ClientType_CONSUMER, Message: r.ClientId + " " + r.ClientType.String()}, nil
}

func (standIn) Subscribe(_ context.Context, r *rafkapb.SubscribeRequest) (*rafkapb.SubscribeResponse, error) {
	return &rafkapb.SubscribeResponse{Success: true, Message: r.ConsumerId + " -> " + r.Topic}, nil
}

func (standIn) UpdateOffset(_ context.Context, r *rafkapb.UpdateOffsetRequest) (*rafkapb.UpdateOffsetResponse, error) {
	return &rafkapb.UpdateOffsetResponse{Success: r.Offset >= 0, Message: fmt.Sprintf("%s %s %d", r.ConsumerId, r.Topic, r.Offset)}, nil
}

func (standIn) GetMetrics(context.Context, *rafkapb.GetMetricsRequest) (*rafkapb.GetMetricsResponse, error) {
	return &rafkapb.GetMetricsResponse{TotalMessages: 1 << 40, TotalBytes: 1<<63 + 5, OldestMessageAgeSecs: 86400}, nil
}

func (standIn) ForwardMessage(_ context.Context, r *rafkapb.ForwardMessageRequest) (*rafkapb.ForwardMessageResponse, error) {
	return &rafkapb.ForwardMessageResponse{Success: true, Message: r.FromBrokerId + ":" + r.Topic + ":" + r.Key + ":" + r.Payload, Offset: r.Offset + int64(r.TargetPartition)}, nil
}

func standInBrokers(n int) []*rafkapb.BrokerInfo {
	var bs []*rafkapb.BrokerInfo
	for i := range n {
		bs = append(bs, &rafkapb.BrokerInfo{BrokerId: fmt.Sprintf("broker-%d", i), Address: "10.0.0.1", Port: 50051 + int32(i), PartitionId: int32(i), TotalPartitions: int32(n), IsHealthy: i%2 == 0})
	}
	return bs
}

func (standIn) GetClusterInfo(_ context.Context, r *rafkapb.GetClusterInfoRequest) (*rafkapb.GetClusterInfoResponse, error) {
	return &rafkapb.GetClusterInfoResponse{Brokers: standInBrokers(3), ClusterSize: 3, ClusterId: "cluster-for-" + r.RequestingBrokerId}, nil
}

func (standIn) JoinCluster(_ context.Context, r *rafkapb.JoinClusterRequest) (*rafkapb.JoinClusterResponse, error) {
	return &rafkapb.JoinClusterResponse{Success: true, Message: fmt.Sprintf("%s@%s:%d p%d/%d", r.BrokerId, r.Address, r.Port, r.PartitionId, r.TotalPartitions), ExistingBrokers: standInBrokers(int(r.TotalPartitions))}, nil
}

func (standIn) HealthCheck(_ context.Context, r *rafkapb.HealthCheckRequest) (*rafkapb.HealthCheckResponse, error) {
	return &rafkapb.HealthCheckResponse{Healthy: true, Status: "OK for " + r.BrokerId, Timestamp: 1764576000}, nil
}

func (standIn) GossipMessage(_ context.Context, r *rafkapb.GossipMessageRequest) (*rafkapb.GossipMessageResponse, error) {
	return &rafkapb.GossipMessageResponse{Success: r.MessageType != rafkapb.GossipMessageType_UNKNOWN_GOSSIP, Message: fmt.Sprintf("%s %s %d %d", r.FromNodeId, r.MessageType, r.Timestamp, r.Ttl)}, nil
}

func standInNodes(ids ...string) []*rafkapb.MeshNodeInfo {
	var ns []*rafkapb.MeshNodeInfo
	for i, id := range ids {
		ns = append(ns, &rafkapb.MeshNodeInfo{NodeId: id, Address: "10.0.1.1", Port: int32(7000 + i), PartitionId: int32(i), TotalPartitions: int32(len(ids)), IsAlive: true, LastSeenTimestamp: 1764576000, Metadata: map[string]string{"zone": "z" + id, "role": "mesh"}})
	}
	return ns
}

func (standIn) GetMeshTopology(_ context.Context, r *rafkapb.GetMeshTopologyRequest) (*rafkapb.GetMeshTopologyResponse, error) {
	return &rafkapb.GetMeshTopologyResponse{Nodes: standInNodes("a", "b", r.RequestingNodeId), PartitionOwners: map[int32]string{0: "a", 1: "b", 2: r.RequestingNodeId}, ClusterSize: 3}, nil
}

func (standIn) JoinMesh(_ context.Context, r *rafkapb.JoinMeshRequest) (*rafkapb.JoinMeshResponse, error) {
	return &rafkapb.JoinMeshResponse{Success: true, Message: r.NodeId + " via " + strings.Join(r.BootstrapNodes, ","), ExistingNodes: standInNodes(r.BootstrapNodes...)}, nil
}

func (standIn) LeaveMesh(_ context.Context, r *rafkapb.LeaveMeshRequest) (*rafkapb.LeaveMeshResponse, error) {
	return &rafkapb.LeaveMeshResponse{Success: true, Message: r.NodeId + " left"}, nil
}

// tap records every byte read from and written to the connections it
// wraps.
type tap struct {
	mu      sync.Mutex
	read    bytes.Buffer
	written bytes.Buffer
}

func (t *tap) wrap(c net.Conn) net.Conn { return &tapConn{Conn: c, t: t} }

func (t *tap) snapshot() (read, written []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.read.Bytes()), bytes.Clone(t.written.Bytes())
}

type tapConn struct {
	net.Conn
	t *tap
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.t.mu.Lock()
	c.t.read.Write(p[:n])
	c.t.mu.Unlock()
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.t.mu.Lock()
	c.t.written.Write(p[:n])
	c.t.mu.Unlock()
	return n, err
}

type tapListener struct {
	net.Listener
	t *tap
}

func (l tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.t.wrap(c), nil
}

// relay starts a plugin.Relay from listen to upstream on its own transport.
func relay(t *testing.T, listen, upstream string, framing plugin.Framing) (*plugin.Relay, string) {
	t.Helper()
	tr := plugin.New()
	t.Cleanup(func() { tr.Close() })
	r, err := plugin.NewRelay(plugin.RelayConfig{Upstreams: []string{upstream}, Framing: framing, Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tr.Listen(listen)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln) }()
	t.Cleanup(func() {
		r.Close()
		if err := <-served; err != nil && !errors.Is(err, plugin.ErrRelayClosed) {
			t.Errorf("relay %s -> %s: %v", listen, upstream, err)
		}
	})
	return r, ln.Addr().String()
}

// TestRafkaBehindRaptor: a Rafka client → raptor proxy (TCP in, Raptor out)
// → Raptor → raptor gateway (Raptor in, TCP out) → a stand-in Rafka broker.
// Every RPC answers as the broker itself would, the server stream included;
// the bytes the broker reads are exactly those the client wrote (and back),
// and the gateway's and proxy's counters show them. The relays run with raw
// framing (as docs/RAFKA.md advises) and with the commands' default, Kafka
// framing, which must let a stream that is not Kafka pass unchanged.
func TestRafkaBehindRaptor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		framing plugin.Framing
	}{{"raw", plugin.FramingRaw}, {"kafka", plugin.FramingKafka}} {
		t.Run(tc.name, func(t *testing.T) { rafkaBehindRaptor(t, tc.framing) })
	}
}

func rafkaBehindRaptor(t *testing.T, framing plugin.Framing) {
	var server, client tap
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rafkapb.RegisterBrokerServiceServer(srv, standIn{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tapListener{tln, &server}) }()
	defer func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("stand-in broker: %v", err)
		}
	}()
	gw, gwAddr := relay(t, "raptor://127.0.0.1:0", "tcp://"+tln.Addr().String(), framing)
	px, pxAddr := relay(t, "tcp://127.0.0.1:0", "raptor://"+gwAddr, framing)

	cc, err := grpc.NewClient("passthrough:///"+pxAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return client.wrap(c), nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := rafkapb.NewBrokerServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	direct := standIn{}

	type call struct {
		name string
		via  func() (proto.Message, error)
		want func() (proto.Message, error)
	}
	unary := func(name string, req proto.Message, viaFn, wantFn func(proto.Message) (proto.Message, error)) call {
		return call{name, func() (proto.Message, error) { return viaFn(req) }, func() (proto.Message, error) { return wantFn(req) }}
	}
	calls := []call{
		unary("Publish", &rafkapb.PublishRequest{ProducerId: "p-uuid", Topic: "orders", Key: "customer-7", Payload: "héllo"},
			func(m proto.Message) (proto.Message, error) { return c.Publish(ctx, m.(*rafkapb.PublishRequest)) },
			func(m proto.Message) (proto.Message, error) { return direct.Publish(ctx, m.(*rafkapb.PublishRequest)) }),
		unary("Acknowledge", &rafkapb.AcknowledgeRequest{ConsumerId: "c1", MessageId: "m-1", Topic: "orders"},
			func(m proto.Message) (proto.Message, error) {
				return c.Acknowledge(ctx, m.(*rafkapb.AcknowledgeRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.Acknowledge(ctx, m.(*rafkapb.AcknowledgeRequest))
			}),
		unary("Register", &rafkapb.RegisterRequest{ClientId: "c1", ClientType: rafkapb.ClientType_CONSUMER},
			func(m proto.Message) (proto.Message, error) { return c.Register(ctx, m.(*rafkapb.RegisterRequest)) },
			func(m proto.Message) (proto.Message, error) {
				return direct.Register(ctx, m.(*rafkapb.RegisterRequest))
			}),
		unary("Subscribe", &rafkapb.SubscribeRequest{ConsumerId: "c1", Topic: "orders"},
			func(m proto.Message) (proto.Message, error) { return c.Subscribe(ctx, m.(*rafkapb.SubscribeRequest)) },
			func(m proto.Message) (proto.Message, error) {
				return direct.Subscribe(ctx, m.(*rafkapb.SubscribeRequest))
			}),
		unary("UpdateOffset", &rafkapb.UpdateOffsetRequest{ConsumerId: "c1", Topic: "orders", Offset: 1 << 40},
			func(m proto.Message) (proto.Message, error) {
				return c.UpdateOffset(ctx, m.(*rafkapb.UpdateOffsetRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.UpdateOffset(ctx, m.(*rafkapb.UpdateOffsetRequest))
			}),
		unary("GetMetrics", &rafkapb.GetMetricsRequest{},
			func(m proto.Message) (proto.Message, error) { return c.GetMetrics(ctx, m.(*rafkapb.GetMetricsRequest)) },
			func(m proto.Message) (proto.Message, error) {
				return direct.GetMetrics(ctx, m.(*rafkapb.GetMetricsRequest))
			}),
		unary("ForwardMessage", &rafkapb.ForwardMessageRequest{FromBrokerId: "b0", Topic: "t", Key: "k", Payload: "p", TargetPartition: 2, Offset: 40},
			func(m proto.Message) (proto.Message, error) {
				return c.ForwardMessage(ctx, m.(*rafkapb.ForwardMessageRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.ForwardMessage(ctx, m.(*rafkapb.ForwardMessageRequest))
			}),
		unary("GetClusterInfo", &rafkapb.GetClusterInfoRequest{RequestingBrokerId: "b9"},
			func(m proto.Message) (proto.Message, error) {
				return c.GetClusterInfo(ctx, m.(*rafkapb.GetClusterInfoRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.GetClusterInfo(ctx, m.(*rafkapb.GetClusterInfoRequest))
			}),
		unary("JoinCluster", &rafkapb.JoinClusterRequest{BrokerId: "b3", Address: "10.0.0.4", Port: 50054, PartitionId: 3, TotalPartitions: 4},
			func(m proto.Message) (proto.Message, error) {
				return c.JoinCluster(ctx, m.(*rafkapb.JoinClusterRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.JoinCluster(ctx, m.(*rafkapb.JoinClusterRequest))
			}),
		unary("HealthCheck", &rafkapb.HealthCheckRequest{BrokerId: "b1"},
			func(m proto.Message) (proto.Message, error) {
				return c.HealthCheck(ctx, m.(*rafkapb.HealthCheckRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.HealthCheck(ctx, m.(*rafkapb.HealthCheckRequest))
			}),
		unary("GossipMessage", &rafkapb.GossipMessageRequest{FromNodeId: "n1", MessageType: rafkapb.GossipMessageType_PARTITION_UPDATE, Timestamp: -5, Ttl: 3},
			func(m proto.Message) (proto.Message, error) {
				return c.GossipMessage(ctx, m.(*rafkapb.GossipMessageRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.GossipMessage(ctx, m.(*rafkapb.GossipMessageRequest))
			}),
		unary("GetMeshTopology", &rafkapb.GetMeshTopologyRequest{RequestingNodeId: "n7"},
			func(m proto.Message) (proto.Message, error) {
				return c.GetMeshTopology(ctx, m.(*rafkapb.GetMeshTopologyRequest))
			},
			func(m proto.Message) (proto.Message, error) {
				return direct.GetMeshTopology(ctx, m.(*rafkapb.GetMeshTopologyRequest))
			}),
		unary("JoinMesh", &rafkapb.JoinMeshRequest{NodeId: "n8", Address: "10.0.1.8", Port: 7008, PartitionId: 1, TotalPartitions: 2, BootstrapNodes: []string{"n1", "n2"}},
			func(m proto.Message) (proto.Message, error) { return c.JoinMesh(ctx, m.(*rafkapb.JoinMeshRequest)) },
			func(m proto.Message) (proto.Message, error) {
				return direct.JoinMesh(ctx, m.(*rafkapb.JoinMeshRequest))
			}),
		unary("LeaveMesh", &rafkapb.LeaveMeshRequest{NodeId: "n8"},
			func(m proto.Message) (proto.Message, error) { return c.LeaveMesh(ctx, m.(*rafkapb.LeaveMeshRequest)) },
			func(m proto.Message) (proto.Message, error) {
				return direct.LeaveMesh(ctx, m.(*rafkapb.LeaveMeshRequest))
			}),
	}
	for _, cl := range calls {
		got, err := cl.via()
		if err != nil {
			t.Errorf("%s through the relays: %v", cl.name, err)
			continue
		}
		want, _ := cl.want()
		if !proto.Equal(got, want) {
			t.Errorf("%s through the relays = %v, the broker answers %v", cl.name, got, want)
		}
	}

	req := &rafkapb.ConsumeRequest{Id: "c1", Topic: "orders"}
	st, err := c.Consume(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		m, err := st.Recv()
		if err == io.EOF {
			if i != standInMessages {
				t.Fatalf("Consume ended after %d messages, want %d", i, standInMessages)
			}
			break
		}
		if err != nil {
			t.Fatalf("Consume Recv %d: %v", i, err)
		}
		if !proto.Equal(m, standInMessage(req, i)) {
			t.Fatalf("Consume message %d = %v, want %v", i, m, standInMessage(req, i))
		}
	}

	// The relays carry the bytes unchanged: once the connection is quiet,
	// what the broker read is what the client wrote, and back, and both
	// relays counted exactly that.
	deadline := time.Now().Add(10 * time.Second)
	var cRead, cWritten, sRead, sWritten []byte
	var gs, ps plugin.RelayStats
	for {
		cRead, cWritten = client.snapshot()
		sRead, sWritten = server.snapshot()
		gs, ps = gw.Stats(), px.Stats()
		n := func(b []byte) uint64 { return uint64(len(b)) }
		if n(cWritten) == n(sRead) && n(sWritten) == n(cRead) && gs.BytesUp == n(cWritten) && ps.BytesUp == n(cWritten) &&
			gs.BytesDown == n(cRead) && ps.BytesDown == n(cRead) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bytes never settled: client wrote %d read %d, broker read %d wrote %d, gateway up %d down %d, proxy up %d down %d",
				len(cWritten), len(cRead), len(sRead), len(sWritten), gs.BytesUp, gs.BytesDown, ps.BytesUp, ps.BytesDown)
		}
		settle := time.NewTimer(10 * time.Millisecond) // poll the counters until they agree, bounded by deadline
		<-settle.C
	}
	if !bytes.Equal(cWritten, sRead) || !bytes.Equal(sWritten, cRead) {
		t.Fatalf("the relays changed bytes: client→broker equal %v, broker→client equal %v", bytes.Equal(cWritten, sRead), bytes.Equal(sWritten, cRead))
	}
	if !bytes.HasPrefix(cWritten, []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) {
		t.Fatalf("the client's bytes do not start with the HTTP/2 preface (h2c): %q", cWritten[:min(len(cWritten), 64)])
	}
	if gs.Accepted != 1 || ps.Accepted != 1 {
		t.Errorf("gateway accepted %d streams, proxy %d; want one connection for every RPC", gs.Accepted, ps.Accepted)
	}
	t.Logf("client → proxy → Raptor → gateway → broker: %d bytes up, %d bytes down, byte for byte; gateway %+v", gs.BytesUp, gs.BytesDown, gs)
}
