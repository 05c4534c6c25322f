package rafka

import (
	"context"

	"google.golang.org/grpc"
)

// ServiceName is the full gRPC name of the service, as Rafka's
// `package rafka; service BrokerService` declares it.
const ServiceName = "rafka.BrokerService"

// The full method names ("/rafka.BrokerService/Publish", ...).
const (
	MethodPublish      = "/" + ServiceName + "/Publish"
	MethodConsume      = "/" + ServiceName + "/Consume"
	MethodAcknowledge  = "/" + ServiceName + "/Acknowledge"
	MethodRegister     = "/" + ServiceName + "/Register"
	MethodSubscribe    = "/" + ServiceName + "/Subscribe"
	MethodUpdateOffset = "/" + ServiceName + "/UpdateOffset"
	MethodGetMetrics   = "/" + ServiceName + "/GetMetrics"
)

// BrokerServiceServer is the server side of rafka.BrokerService, the
// interface protoc-gen-go-grpc would generate for it. [Bridge] implements it.
type BrokerServiceServer interface {
	// Publish stores one message and says where.
	Publish(context.Context, *PublishRequest) (*PublishResponse, error)
	// Consume pushes messages to a registered consumer until the stream
	// ends (server streaming).
	Consume(*ConsumeRequest, grpc.ServerStreamingServer[ConsumeResponse]) error
	// Acknowledge commits a processed message's offset for its group.
	Acknowledge(context.Context, *AcknowledgeRequest) (*AcknowledgeResponse, error)
	// Register registers a consumer and returns its ID.
	Register(context.Context, *RegisterRequest) (*RegisterResponse, error)
	// Subscribe adds topics to a consumer's subscription.
	Subscribe(context.Context, *SubscribeRequest) (*SubscribeResponse, error)
	// UpdateOffset moves a group's position in a partition (seek).
	UpdateOffset(context.Context, *UpdateOffsetRequest) (*UpdateOffsetResponse, error)
	// GetMetrics returns the server's counters.
	GetMetrics(context.Context, *GetMetricsRequest) (*GetMetricsResponse, error)
}

// RegisterBrokerServiceServer registers srv on s (a *grpc.Server) under
// [ServiceName].
func RegisterBrokerServiceServer(s grpc.ServiceRegistrar, srv BrokerServiceServer) {
	s.RegisterService(&BrokerServiceDesc, srv)
}

// unary builds a MethodDesc handler for one unary method: decode the
// request, run it through the server's interceptors, encode typed errors
// as gRPC statuses.
func unary[Req any, Resp any](name, full string, call func(BrokerServiceServer, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(Req)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				resp, err := call(srv.(BrokerServiceServer), ctx, req.(*Req))
				if err != nil {
					return nil, toStatus(err)
				}
				return resp, nil
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
		},
	}
}

// BrokerServiceDesc is the hand-written grpc.ServiceDesc of
// rafka.BrokerService: six unary methods and the server-streaming Consume.
// Messages use the msgpack codec ([CodecName]), not protobuf.
var BrokerServiceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*BrokerServiceServer)(nil),
	Methods: []grpc.MethodDesc{
		unary("Publish", MethodPublish, BrokerServiceServer.Publish),
		unary("Acknowledge", MethodAcknowledge, BrokerServiceServer.Acknowledge),
		unary("Register", MethodRegister, BrokerServiceServer.Register),
		unary("Subscribe", MethodSubscribe, BrokerServiceServer.Subscribe),
		unary("UpdateOffset", MethodUpdateOffset, BrokerServiceServer.UpdateOffset),
		unary("GetMetrics", MethodGetMetrics, BrokerServiceServer.GetMetrics),
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Consume",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(ConsumeRequest)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			return toStatus(srv.(BrokerServiceServer).Consume(in, &grpc.GenericServerStream[ConsumeRequest, ConsumeResponse]{ServerStream: stream}))
		},
	}},
	Metadata: "rafka.proto (hand-written Go definition, see docs/RAFKA.md)",
}
