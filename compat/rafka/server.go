package rafka

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/plugin"
)

// ServerConfig configures a [Server]. Zero values mean the documented
// defaults.
type ServerConfig struct {
	// Addr is host:port for both TCP and Raptor (UDP), on one port number.
	// Default "127.0.0.1:50051", Rafka's port; port 0 picks one.
	Addr string
	// Brokers are the Kafka cluster's seed brokers. Default: none, and an
	// embedded broker (Embedded) is started.
	Brokers []string
	// Embedded configures the embedded broker when Brokers is empty. Its
	// Addr defaults to "127.0.0.1:0", its Transport to the server's.
	Embedded kafka.BrokerConfig
	// Bridge configures the bridge; its Brokers are set from Brokers or the
	// embedded broker.
	Bridge Config
	// Transport listens for the server. Default: a new plugin.Transport
	// owned by the server.
	Transport *plugin.Transport
	// GRPCOptions are added to the grpc.Server's options.
	GRPCOptions []grpc.ServerOption
	// Logger receives server events. Default: discard.
	Logger *slog.Logger
}

// Server is Rafka's BrokerService on one port for TCP and Raptor, served
// by a [Bridge] into a Kafka cluster or an embedded broker: what
// `raptor rafka serve` runs.
type Server struct {
	t      *plugin.Transport
	ownT   bool
	broker *kafka.Broker // nil with ServerConfig.Brokers
	bridge *Bridge
	srv    *grpc.Server
	ln     *plugin.MultiListener
	served chan error
	once   sync.Once
	err    error
}

// NewServer starts a server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:50051"
	}
	s := &Server{t: cfg.Transport, served: make(chan error, 1)}
	if s.t == nil {
		var opts []plugin.Option
		if cfg.Logger != nil {
			opts = append(opts, plugin.WithLogger(cfg.Logger))
		}
		s.t, s.ownT = plugin.New(opts...), true
	}
	fail := func(err error) (*Server, error) {
		if s.bridge != nil {
			s.bridge.Close()
		}
		if s.broker != nil {
			s.broker.Close()
		}
		if s.ownT {
			s.t.Close()
		}
		return nil, err
	}
	bcfg := cfg.Bridge
	bcfg.Brokers = cfg.Brokers
	if bcfg.Logger == nil {
		bcfg.Logger = cfg.Logger
	}
	if len(cfg.Brokers) == 0 {
		ecfg := cfg.Embedded
		if ecfg.Transport == nil {
			ecfg.Transport = s.t
		}
		if ecfg.Logger == nil {
			ecfg.Logger = cfg.Logger
		}
		b, err := kafka.NewBroker(ecfg)
		if err != nil {
			return fail(fmt.Errorf("rafka: embedded broker: %w", err))
		}
		s.broker = b
		bcfg.Brokers = []string{b.Addr()}
	}
	br, err := NewBridge(bcfg)
	if err != nil {
		return fail(err)
	}
	s.bridge = br
	ln, err := s.t.ListenDual(cfg.Addr)
	if err != nil {
		return fail(fmt.Errorf("rafka: listen on %s: %w", cfg.Addr, err))
	}
	s.ln = ln
	s.srv = br.GRPCServer(cfg.GRPCOptions...)
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the host:port the service listens on, over TCP and over Raptor.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// KafkaBrokers are the seed brokers the bridge stores into.
func (s *Server) KafkaBrokers() []string { return s.bridge.cfg.Brokers }

// Bridge returns the server's bridge.
func (s *Server) Bridge() *Bridge { return s.bridge }

// Broker returns the embedded broker, or nil when the server stores into
// ServerConfig.Brokers.
func (s *Server) Broker() *kafka.Broker { return s.broker }

// Listener returns the server's listener (TCP and Raptor), for its
// counters.
func (s *Server) Listener() *plugin.MultiListener { return s.ln }

// Served yields the error of the grpc.Server's Serve once
// it has returned (the listener failed, or Close).
func (s *Server) Served() <-chan error { return s.served }

// Close ends every call (Consume streams get ErrBridgeClosed), waiting up
// to grace for them before cutting the connections, then stops the
// embedded broker. It is idempotent.
func (s *Server) Close(grace time.Duration) error {
	s.once.Do(func() {
		done := make(chan struct{})
		go func() { s.bridge.Close(); close(done) }()
		t := time.NewTimer(grace)
		select {
		case <-done:
			t.Stop()
		case <-t.C: // a stream blocked sending to a client that stopped reading
		}
		s.srv.Stop()
		<-done
		s.ln.Wait()
		var errs []error
		if s.broker != nil {
			errs = append(errs, s.broker.Close())
		}
		if s.ownT {
			errs = append(errs, s.t.Close())
		}
		s.err = errors.Join(errs...)
	})
	return s.err
}
