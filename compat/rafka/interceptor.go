package rafka

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/raptormq/raptor/compat/rafka/rafkapb"
)

// The bridge's calls share one preamble, run by its interceptors: count
// the call in (so Close can cancel it and wait for it), run it, map an
// interruption by Close to ErrBridgeClosed, and answer a failure the way
// Rafka's clients read it.

// unaryInterceptor runs every unary call of the bridge.
func (b *Bridge) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	cctx, done, err := b.enter(ctx)
	if err == nil {
		cctx, cancel := context.WithTimeout(cctx, b.cfg.CallTimeout)
		var resp any
		resp, err = handler(cctx, req)
		cancel()
		done()
		if err == nil {
			return resp, nil
		}
		err = b.exit(err)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil { // our bound, not the client's
			err = &BrokerError{Op: method(info.FullMethod), Err: fmt.Errorf("no answer from the Kafka cluster %v within %v", b.cfg.Brokers, b.cfg.CallTimeout)}
		}
	}
	b.failed.Add(1)
	return b.failure(ctx, info.FullMethod, err)
}

// streamInterceptor runs every streaming call (Consume) of the bridge.
func (b *Bridge) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, done, err := b.enter(ss.Context())
	if err == nil {
		err = handler(srv, ctxStream{ss, ctx})
		done()
		if err == nil {
			return nil
		}
		err = b.exit(err)
	}
	st := toStatus(err)
	if st.Code() != codes.Canceled {
		b.failed.Add(1)
		b.log.Debug("rafka: stream failed", "method", info.FullMethod, "code", st.Code(), "err", st.Message())
	}
	return st.Err()
}

// method is the short name of a full method name.
func method(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

// ctxStream is a server stream with the bridge's context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }

// failure answers a failed unary call. A response with success and
// message fields carries success=false and the error's text, with the
// status code's name and the ErrorInfo reason in the trailers TrailerCode
// and TrailerReason; the call's status is OK, as Rafka's clients expect.
// Other calls, and Unimplemented, Canceled and DeadlineExceeded, fail
// with the gRPC status.
func (b *Bridge) failure(ctx context.Context, method string, err error) (any, error) {
	st := toStatus(err)
	b.log.Debug("rafka: call failed", "method", method, "code", st.Code(), "err", st.Message())
	body := failureBodies[method]
	switch st.Code() {
	case codes.Unimplemented, codes.Canceled, codes.DeadlineExceeded:
		body = nil
	}
	if body == nil {
		return nil, st.Err()
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs(TrailerCode, st.Code().String(), TrailerReason, reasonOf(st)))
	return body(strings.ToValidUTF8(st.Message(), "\uFFFD")), nil
}

// failureBodies maps the full name of each method whose response has a
// bool success and a string message to a maker of its failure response,
// read from the generated descriptors.
var failureBodies = func() map[string]func(text string) proto.Message {
	m := map[string]func(string) proto.Message{}
	sd := rafkapb.File_rafka_proto.Services().ByName("BrokerService")
	for i := 0; i < sd.Methods().Len(); i++ {
		md := sd.Methods().Get(i)
		out := md.Output()
		succ, msg := out.Fields().ByName("success"), out.Fields().ByName("message")
		if succ == nil || msg == nil || succ.Kind() != protoreflect.BoolKind || msg.Kind() != protoreflect.StringKind {
			continue
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(out.FullName())
		if err != nil {
			panic("rafka: generated type missing for " + string(out.FullName()) + ": " + err.Error())
		}
		m["/"+string(sd.FullName())+"/"+string(md.Name())] = func(text string) proto.Message {
			r := mt.New() // success is false
			r.Set(msg, protoreflect.ValueOfString(text))
			return r.Interface()
		}
	}
	return m
}()
