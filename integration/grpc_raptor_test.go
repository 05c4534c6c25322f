package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/raptormq/raptor/reliable"
)

// grpcOverRaptor serves srv on a Raptor listener on 127.0.0.1 and returns a
// client connection that dials it through a reliable.Dialer. Everything is
// stopped on test cleanup, in order: client, dialer, server, listener.
func grpcOverRaptor(t *testing.T, srv *grpc.Server, opts ...grpc.DialOption) (*grpc.ClientConn, *reliable.Listener) {
	t.Helper()
	ln, err := reliable.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	d := &reliable.Dialer{}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "udp", addr)
		}),
	}, opts...)
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), opts...)
	if err != nil {
		srv.Stop()
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		d.Close()
		srv.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("Serve: %v", err)
		}
		ln.Close()
	})
	return cc, ln
}

// TestGRPCHealthOverRaptor: the standard health service, unary Check and
// the server-streaming Watch, over Raptor streams, unchanged.
func TestGRPCHealthOverRaptor(t *testing.T) {
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	hs.SetServingStatus("raptor", healthpb.HealthCheckResponse_SERVING)
	cc, ln := grpcOverRaptor(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)

	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "raptor"})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check status = %v, want SERVING", resp.Status)
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound", err)
	}

	// Watch: the first status, then every change pushed by the server.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	w, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{Service: "raptor"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	recv := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("Watch Recv: %v", err)
		}
		if m.Status != want {
			t.Fatalf("Watch status = %v, want %v", m.Status, want)
		}
	}
	recv(healthpb.HealthCheckResponse_SERVING)
	for i := 0; i < 10; i++ {
		// Each change is set only after the previous one was received, so
		// none is coalesced by the health server.
		hs.SetServingStatus("raptor", healthpb.HealthCheckResponse_NOT_SERVING)
		recv(healthpb.HealthCheckResponse_NOT_SERVING)
		hs.SetServingStatus("raptor", healthpb.HealthCheckResponse_SERVING)
		recv(healthpb.HealthCheckResponse_SERVING)
	}
	hs.Shutdown() // every watched service goes NOT_SERVING
	recv(healthpb.HealthCheckResponse_NOT_SERVING)
	wcancel()
	if _, err := w.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("Recv after cancel: %v, want Canceled", err)
	}
	if ln.SessionCount() == 0 {
		t.Fatal("no Raptor session on the server: gRPC did not use Raptor")
	}
}

// TestGRPCConcurrentOverRaptor: many concurrent unary RPCs and watches over
// one Raptor session, all multiplexed by HTTP/2 over Raptor streams.
func TestGRPCConcurrentOverRaptor(t *testing.T) {
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	const services = 16
	for i := 0; i < services; i++ {
		hs.SetServingStatus(fmt.Sprintf("svc-%d", i), healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus(fmt.Sprintf("watch-%d", i), healthpb.HealthCheckResponse_SERVING)
	}
	cc, ln := grpcOverRaptor(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)

	const workers, perWorker = 32, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers+services)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				svc := fmt.Sprintf("svc-%d", (g+i)%services)
				r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
				if err != nil {
					errs <- fmt.Errorf("worker %d call %d Check(%s): %w", g, i, svc, err)
					return
				}
				if r.Status != healthpb.HealthCheckResponse_SERVING {
					errs <- fmt.Errorf("worker %d Check(%s) = %v", g, svc, r.Status)
					return
				}
			}
		}()
	}
	// Concurrent watches (of other services than the workers check): each
	// sees SERVING, then NOT_SERVING when its service changes.
	watchers := make([]healthpb.Health_WatchClient, services)
	for i := range watchers {
		w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: fmt.Sprintf("watch-%d", i)})
		if err != nil {
			t.Fatalf("Watch watch-%d: %v", i, err)
		}
		if m, err := w.Recv(); err != nil || m.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Watch watch-%d first: %v %v", i, m, err)
		}
		watchers[i] = w
	}
	for i, w := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := w.Recv()
			if err != nil || m.Status != healthpb.HealthCheckResponse_NOT_SERVING {
				errs <- fmt.Errorf("Watch watch-%d after change: %v %v", i, m, err)
			}
		}()
	}
	for i := 0; i < services; i++ {
		hs.SetServingStatus(fmt.Sprintf("watch-%d", i), healthpb.HealthCheckResponse_NOT_SERVING)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ln.SessionCount(); n != 1 {
		t.Fatalf("%d Raptor sessions on the server, want 1 (one gRPC connection)", n)
	}
}

// rawCodec passes []byte through unchanged, so that the large-message test
// measures the transport and not protobuf. It is registered under its
// content-subtype; calls choose it with grpc.CallContentSubtype.
type rawCodec struct{}

func init() { encoding.RegisterCodec(rawCodec{}) }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "raptor-raw-test" }

// TestGRPCLargeMessageOverRaptor: 1 MiB requests and responses (an echo
// service declared by hand), several concurrently, byte for byte, plus a
// health Check on the same connection.
func TestGRPCLargeMessageOverRaptor(t *testing.T) {
	const size = 1 << 20
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(4*size), grpc.MaxSendMsgSize(4*size))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "raptor.test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Echo",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in []byte
				if err := dec(&in); err != nil {
					return nil, err
				}
				out := bytes.Clone(in)
				for i := range out {
					out[i] ^= 0xff // prove the server read every byte
				}
				return &out, nil
			},
		}},
	}, struct{}{})
	cc, _ := grpcOverRaptor(t, srv, grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(4*size), grpc.MaxCallSendMsgSize(4*size)))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	const calls = 4
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	for c := 0; c < calls; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := make([]byte, size)
			for i := range in {
				in[i] = byte(i*31 + c)
			}
			var out []byte
			start := time.Now()
			if err := cc.Invoke(ctx, "/raptor.test.Echo/Echo", &in, &out, grpc.CallContentSubtype(rawCodec{}.Name())); err != nil {
				errs <- fmt.Errorf("call %d: %w", c, err)
				return
			}
			if len(out) != size {
				errs <- fmt.Errorf("call %d: %d bytes back, want %d", c, len(out), size)
				return
			}
			for i := range out {
				if out[i] != in[i]^0xff {
					errs <- fmt.Errorf("call %d: byte %d = %#x, want %#x", c, i, out[i], in[i]^0xff)
					return
				}
			}
			t.Logf("call %d: 1 MiB each way in %v", c, time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Protobuf RPCs share the connection with the raw-codec ones.
	if r, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check after the large calls: %v %v", r, err)
	}
}
