package rafkapb_test

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/raptormq/raptor/compat/rafka/rafkapb"
)

// rafkaInterface is Rafka's interface as Raptor's interface notes
// (interfaces/rafka-broker-service.md) write it, line for line: the
// generated descriptors must say exactly this.
var rafkaInterface = []string{
	"PublishRequest: 1 producer_id string; 2 topic string; 3 key string; 4 payload string",
	"PublishResponse: 1 message_id string; 2 success bool; 3 message string; 4 partition int32; 5 offset int64",
	"ConsumeRequest: 1 id string; 2 topic string",
	"ConsumeResponse: 1 message_id string; 2 topic string; 3 payload string; 4 sent_at int64; 5 offset int64",
	"AcknowledgeRequest: 1 consumer_id string; 2 message_id string; 3 topic string",
	"AcknowledgeResponse: 1 success bool; 2 message string",
	"RegisterRequest: 1 client_id string; 2 client_type ClientType",
	"RegisterResponse: 1 success bool; 2 message string",
	"SubscribeRequest: 1 consumer_id string; 2 topic string",
	"SubscribeResponse: 1 success bool; 2 message string",
	"UpdateOffsetRequest: 1 consumer_id string; 2 topic string; 3 offset int64",
	"UpdateOffsetResponse: 1 success bool; 2 message string",
	"GetMetricsRequest: (no fields)",
	"GetMetricsResponse: 1 total_messages uint64; 2 total_bytes uint64; 3 oldest_message_age_secs uint64",
	"enum ClientType: UNKNOWN = 0; PRODUCER = 1; CONSUMER = 2",
	"ForwardMessageRequest: 1 from_broker_id string; 2 topic string; 3 key string; 4 payload string; 5 target_partition int32; 6 offset int64",
	"ForwardMessageResponse: 1 success bool; 2 message string; 3 offset int64",
	"BrokerInfo: 1 broker_id string; 2 address string; 3 port int32; 4 partition_id int32; 5 total_partitions int32; 6 is_healthy bool",
	"GetClusterInfoRequest: 1 requesting_broker_id string",
	"GetClusterInfoResponse: 1 brokers repeated BrokerInfo; 2 cluster_size int32; 3 cluster_id string",
	"JoinClusterRequest: 1 broker_id string; 2 address string; 3 port int32; 4 partition_id int32; 5 total_partitions int32",
	"JoinClusterResponse: 1 success bool; 2 message string; 3 existing_brokers repeated BrokerInfo",
	"HealthCheckRequest: 1 broker_id string",
	"HealthCheckResponse: 1 healthy bool; 2 status string; 3 timestamp int64",
	"GossipMessageRequest: 1 from_node_id string; 2 message_type GossipMessageType; 3 timestamp int64; 4 ttl int32",
	"GossipMessageResponse: 1 success bool; 2 message string",
	"GetMeshTopologyRequest: 1 requesting_node_id string",
	"GetMeshTopologyResponse: 1 nodes repeated MeshNodeInfo; 2 partition_owners map<int32,string>; 3 cluster_size int32",
	"JoinMeshRequest: 1 node_id string; 2 address string; 3 port int32; 4 partition_id int32; 5 total_partitions int32; 6 bootstrap_nodes repeated string",
	"JoinMeshResponse: 1 success bool; 2 message string; 3 existing_nodes repeated MeshNodeInfo",
	"LeaveMeshRequest: 1 node_id string",
	"LeaveMeshResponse: 1 success bool; 2 message string",
	"MeshNodeInfo: 1 node_id string; 2 address string; 3 port int32; 4 partition_id int32; 5 total_partitions int32; 6 is_alive bool; 7 last_seen_timestamp int64; 8 metadata map<string,string>",
	"enum GossipMessageType: UNKNOWN_GOSSIP = 0; NODE_JOIN = 1; NODE_LEAVE = 2; NODE_UPDATE = 3; HEARTBEAT = 4; PARTITION_UPDATE = 5; CLUSTER_STATE = 6",
}

// rafkaRPCs are the service's methods in order: request → response.
var rafkaRPCs = []string{
	"Publish: PublishRequest → PublishResponse",
	"Consume: ConsumeRequest → stream ConsumeResponse",
	"Acknowledge: AcknowledgeRequest → AcknowledgeResponse",
	"Register: RegisterRequest → RegisterResponse",
	"Subscribe: SubscribeRequest → SubscribeResponse",
	"UpdateOffset: UpdateOffsetRequest → UpdateOffsetResponse",
	"GetMetrics: GetMetricsRequest → GetMetricsResponse",
	"ForwardMessage: ForwardMessageRequest → ForwardMessageResponse",
	"GetClusterInfo: GetClusterInfoRequest → GetClusterInfoResponse",
	"JoinCluster: JoinClusterRequest → JoinClusterResponse",
	"HealthCheck: HealthCheckRequest → HealthCheckResponse",
	"GossipMessage: GossipMessageRequest → GossipMessageResponse",
	"GetMeshTopology: GetMeshTopologyRequest → GetMeshTopologyResponse",
	"JoinMesh: JoinMeshRequest → JoinMeshResponse",
	"LeaveMesh: LeaveMeshRequest → LeaveMeshResponse",
}

func fieldType(f protoreflect.FieldDescriptor) string {
	switch {
	case f.IsMap():
		return fmt.Sprintf("map<%s,%s>", fieldType(f.MapKey()), fieldType(f.MapValue()))
	case f.IsList():
		return "repeated " + scalar(f)
	}
	return scalar(f)
}

func scalar(f protoreflect.FieldDescriptor) string {
	switch f.Kind() {
	case protoreflect.EnumKind:
		return string(f.Enum().Name())
	case protoreflect.MessageKind:
		return string(f.Message().Name())
	}
	return f.Kind().String()
}

// TestInterface: package, service, every message, field number, type and
// enum value are Rafka's.
func TestInterface(t *testing.T) {
	fd := rafkapb.File_rafka_proto
	if fd.Package() != "rafka" || fd.Syntax() != protoreflect.Proto3 {
		t.Fatalf("package %q syntax %v, want rafka proto3", fd.Package(), fd.Syntax())
	}
	var got []string
	render := func(name string, parts []string) string {
		if len(parts) == 0 {
			return name + ": (no fields)"
		}
		return name + ": " + strings.Join(parts, "; ")
	}
	for i := 0; i < fd.Messages().Len(); i++ {
		m := fd.Messages().Get(i)
		var parts []string
		for j := 0; j < m.Fields().Len(); j++ {
			f := m.Fields().Get(j)
			if f.HasPresence() && f.ContainingOneof() != nil {
				t.Errorf("%s.%s is in a oneof or optional: Rafka's fields are plain", m.Name(), f.Name())
			}
			parts = append(parts, fmt.Sprintf("%d %s %s", f.Number(), f.Name(), fieldType(f)))
		}
		got = append(got, render(string(m.Name()), parts))
	}
	for i := 0; i < fd.Enums().Len(); i++ {
		e := fd.Enums().Get(i)
		var parts []string
		for j := 0; j < e.Values().Len(); j++ {
			v := e.Values().Get(j)
			parts = append(parts, fmt.Sprintf("%s = %d", v.Name(), v.Number()))
		}
		got = append(got, "enum "+render(string(e.Name()), parts))
	}
	want := map[string]bool{}
	for _, w := range rafkaInterface {
		want[w] = true
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("generated %q is not in Rafka's interface", g)
		}
		delete(want, g)
	}
	for w := range want {
		t.Errorf("Rafka's %q is not generated", w)
	}

	if fd.Services().Len() != 1 || fd.Services().Get(0).FullName() != "rafka.BrokerService" {
		t.Fatalf("services %v, want rafka.BrokerService alone", fd.Services())
	}
	ms := fd.Services().Get(0).Methods()
	if ms.Len() != len(rafkaRPCs) {
		t.Fatalf("%d methods, want %d", ms.Len(), len(rafkaRPCs))
	}
	for i := 0; i < ms.Len(); i++ {
		m := ms.Get(i)
		out := string(m.Output().Name())
		if m.IsStreamingServer() {
			out = "stream " + out
		}
		if m.IsStreamingClient() {
			t.Errorf("%s streams requests; none of Rafka's do", m.Name())
		}
		if g := fmt.Sprintf("%s: %s → %s", m.Name(), m.Input().Name(), out); g != rafkaRPCs[i] {
			t.Errorf("method %d is %q, want %q", i, g, rafkaRPCs[i])
		}
	}
}

// TestWireBytes: messages encode to the bytes Rafka's field numbers and
// types give (protobuf encoding: tag = number<<3 | wire type).
func TestWireBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    proto.Message
		hex  string
	}{
		{"PublishRequest", &rafkapb.PublishRequest{ProducerId: "p", Topic: "t", Key: "k", Payload: "x"}, "0a0170120174" + "1a016b220178"},
		{"PublishResponse", &rafkapb.PublishResponse{MessageId: "0-1", Success: true, Partition: 2, Offset: 300}, "0a03302d3110012002" + "28ac02"},
		{"ConsumeResponse", &rafkapb.ConsumeResponse{MessageId: "0-1", Topic: "t", Payload: "x", SentAt: 5, Offset: 1}, "0a03302d31120174" + "1a0178200528" + "01"},
		{"RegisterRequest", &rafkapb.RegisterRequest{ClientId: "c", ClientType: rafkapb.ClientType_CONSUMER}, "0a01631002"},
		{"GetMetricsResponse", &rafkapb.GetMetricsResponse{TotalMessages: 1, TotalBytes: 2, OldestMessageAgeSecs: 3}, "080110021803"},
		{"GetMeshTopologyResponse", &rafkapb.GetMeshTopologyResponse{PartitionOwners: map[int32]string{1: "a"}, ClusterSize: 1}, "12050801120161" + "1801"},
	} {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != tc.hex {
			t.Errorf("%s encodes to %s, want %s", tc.name, got, tc.hex)
		}
	}
}
