package rafka

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
)

// Client calls rafka.BrokerService over any gRPC connection — typically a
// grpc.ClientConn whose dialer opens Raptor streams:
//
//	d := &reliable.Dialer{}
//	cc, err := grpc.NewClient("passthrough:///"+addr,
//		grpc.WithTransportCredentials(insecure.NewCredentials()),
//		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
//			return d.DialContext(ctx, "udp", a)
//		}))
//	c := rafka.NewClient(cc)
//
// Errors the bridge reports come back typed (*UnknownTopicError,
// *UnknownConsumerError, ...); other failures are gRPC status errors. A
// Client is safe for concurrent use.
type Client struct {
	cc grpc.ClientConnInterface
}

// NewClient returns a Client calling through conn.
func NewClient(conn grpc.ClientConnInterface) *Client { return &Client{cc: conn} }

func invoke[Req, Resp any](ctx context.Context, c *Client, method string, req *Req, opts []grpc.CallOption) (*Resp, error) {
	out := new(Resp)
	opts = append([]grpc.CallOption{grpc.CallContentSubtype(CodecName)}, opts...)
	if err := c.cc.Invoke(ctx, method, req, out, opts...); err != nil {
		return nil, fromStatus(err)
	}
	return out, nil
}

// Publish stores one message and returns its partition and offset. A
// Publish whose context ends may still have stored the message.
func (c *Client) Publish(ctx context.Context, req *PublishRequest, opts ...grpc.CallOption) (*PublishResponse, error) {
	return invoke[PublishRequest, PublishResponse](ctx, c, MethodPublish, req, opts)
}

// Acknowledge commits req.Offset+1 as the group's position in the
// partition.
func (c *Client) Acknowledge(ctx context.Context, req *AcknowledgeRequest, opts ...grpc.CallOption) (*AcknowledgeResponse, error) {
	return invoke[AcknowledgeRequest, AcknowledgeResponse](ctx, c, MethodAcknowledge, req, opts)
}

// Register registers a consumer.
func (c *Client) Register(ctx context.Context, req *RegisterRequest, opts ...grpc.CallOption) (*RegisterResponse, error) {
	return invoke[RegisterRequest, RegisterResponse](ctx, c, MethodRegister, req, opts)
}

// Subscribe adds topics to a consumer's subscription.
func (c *Client) Subscribe(ctx context.Context, req *SubscribeRequest, opts ...grpc.CallOption) (*SubscribeResponse, error) {
	return invoke[SubscribeRequest, SubscribeResponse](ctx, c, MethodSubscribe, req, opts)
}

// UpdateOffset moves a group's position in a partition (seek).
func (c *Client) UpdateOffset(ctx context.Context, req *UpdateOffsetRequest, opts ...grpc.CallOption) (*UpdateOffsetResponse, error) {
	return invoke[UpdateOffsetRequest, UpdateOffsetResponse](ctx, c, MethodUpdateOffset, req, opts)
}

// GetMetrics returns the bridge's counters.
func (c *Client) GetMetrics(ctx context.Context, opts ...grpc.CallOption) (*GetMetricsResponse, error) {
	return invoke[GetMetricsRequest, GetMetricsResponse](ctx, c, MethodGetMetrics, &GetMetricsRequest{}, opts)
}

// Consume opens the push stream of a registered consumer. It returns once
// the bridge has accepted the request, so an unregistered consumer or an
// unknown topic fails here, typed. Cancel ctx or call Close to end the
// stream; a new Consume with the same consumer ID replaces a running one.
func (c *Client) Consume(ctx context.Context, req *ConsumeRequest, opts ...grpc.CallOption) (*ConsumeStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	opts = append([]grpc.CallOption{grpc.CallContentSubtype(CodecName)}, opts...)
	cs, err := c.cc.NewStream(ctx, &BrokerServiceDesc.Streams[0], MethodConsume, opts...)
	if err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	s := &grpc.GenericClientStream[ConsumeRequest, ConsumeResponse]{ClientStream: cs}
	if err := s.Send(req); err != nil && !errors.Is(err, io.EOF) {
		cancel()
		return nil, fromStatus(err)
	}
	if err := s.CloseSend(); err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	// The bridge sends its header once the consumer is validated and its
	// stream set up; an error instead ends the stream with a status.
	md, err := s.Header()
	if err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	cst := &ConsumeStream{s: s, cancel: cancel}
	if len(md.Get(headerConsumerID)) == 0 {
		// A trailers-only answer: the bridge refused the stream, and the
		// status comes with the first Recv.
		resp, err := s.Recv()
		if err != nil {
			cancel()
			return nil, fromStatus(err)
		}
		cst.pending = resp.Messages
	}
	return cst, nil
}

// ConsumeStream is a running Consume push stream. Recv is not safe for
// concurrent use; Close is.
type ConsumeStream struct {
	s       grpc.ServerStreamingClient[ConsumeResponse]
	cancel  context.CancelFunc
	pending []Message
}

// Recv returns the next message: in offset order within each partition.
// It returns the stream's error when it ends (a typed error such as
// ErrBridgeClosed, or the context's).
func (cs *ConsumeStream) Recv() (*Message, error) {
	for len(cs.pending) == 0 {
		resp, err := cs.s.Recv()
		if err != nil {
			cs.cancel() // the stream is over: release its context
			return nil, fromStatus(err)
		}
		cs.pending = resp.Messages
	}
	m := &cs.pending[0]
	cs.pending = cs.pending[1:]
	return m, nil
}

// RecvBatch returns the next push as the bridge sent it, including any
// messages Recv has not returned yet.
func (cs *ConsumeStream) RecvBatch() ([]Message, error) {
	if len(cs.pending) > 0 {
		b := cs.pending
		cs.pending = nil
		return b, nil
	}
	resp, err := cs.s.Recv()
	if err != nil {
		cs.cancel()
		return nil, fromStatus(err)
	}
	return resp.Messages, nil
}

// Close ends the stream. Messages received but not acknowledged are
// delivered again to the group's next consumer of their partition.
func (cs *ConsumeStream) Close() error {
	cs.cancel()
	return nil
}
