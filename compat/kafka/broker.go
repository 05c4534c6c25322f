package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/raptormq/raptor/plugin"
)

// BrokerConfig configures an embedded [Broker]. Zero values mean the
// documented defaults.
type BrokerConfig struct {
	// Addr is host:port to listen on, with TCP and Raptor (UDP) on the same
	// port number. Default "127.0.0.1:0" (a port free in both spaces).
	Addr string
	// Advertise is the host clients are told to connect to. Default: the
	// host of Addr, or 127.0.0.1 when that is unspecified (0.0.0.0, ::).
	Advertise string
	// DataDir makes the broker persistent: state is written there and
	// reloaded on the next start. Default "" (in memory).
	DataDir string
	// Partitions is the partition count of topics created without one
	// (auto-created or Topics). Default 6.
	Partitions int
	// Topics are created at start (when not loaded from DataDir).
	Topics []string
	// AutoCreateTopics lets metadata requests create topics. Default false.
	AutoCreateTopics bool
	// Transport listens for the broker. Default: a new plugin.Transport
	// (with TransportOptions) owned by the broker.
	Transport *plugin.Transport
	// TransportOptions configure the broker's own transport, for example
	// plugin.WithPacketConn to run Raptor over an impaired packet path.
	TransportOptions []plugin.Option
	// Listeners are extra listeners merged into the broker's, which takes
	// them over (for example a raptor+dpdk:// listener, or one opened inside
	// a network namespace). Clients reaching the broker through them need a
	// Dialer mapping (WithBrokerMap) from Addr to their endpoint.
	Listeners []net.Listener
	// KfakeOptions are passed to kfake.NewCluster after the ones the broker
	// sets itself.
	KfakeOptions []kfake.Opt
	// Logger receives broker events. Default: discard.
	Logger *slog.Logger
}

// Broker is an embedded Kafka-protocol broker (one kfake node) that accepts
// Kafka clients over TCP and over Raptor on the same port number.
type Broker struct {
	cluster *kfake.Cluster
	t       *plugin.Transport
	ownT    bool
	addr    string

	mu   sync.Mutex
	lns  []*plugin.MultiListener
	once sync.Once
}

// NewBroker starts a broker.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 6
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: broker address %q is not host:port: %w", cfg.Addr, err)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("kafka: broker address %q: port %q is not a number from 0 to 65535", cfg.Addr, port)
	}
	if cfg.Advertise == "" {
		cfg.Advertise = host
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			cfg.Advertise = "127.0.0.1"
		}
	}
	b := &Broker{t: cfg.Transport}
	if b.t == nil {
		topts := cfg.TransportOptions
		if cfg.Logger != nil {
			topts = append([]plugin.Option{plugin.WithLogger(cfg.Logger)}, topts...)
		}
		b.t, b.ownT = plugin.New(topts...), true
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.ListenFn(func(_, address string) (net.Listener, error) {
			// kfake asks for 127.0.0.1:<port>; we keep its port and our host.
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			extra := cfg.Listeners
			cfg.Listeners = nil // one kfake node takes them
			ln, err := b.t.ListenDual(net.JoinHostPort(host, p), extra...)
			if err != nil {
				return nil, err
			}
			ln.SetAdvertised(cfg.Advertise)
			b.mu.Lock()
			b.lns = append(b.lns, ln)
			b.mu.Unlock()
			return ln, nil
		}),
	}
	if pn != 0 {
		opts = append(opts, kfake.Ports(int(pn)))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if len(cfg.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(cfg.Partitions), cfg.Topics...))
	}
	if cfg.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(kfakeLogger{cfg.Logger}))
	}
	opts = append(opts, cfg.KfakeOptions...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		for _, ln := range cfg.Listeners {
			ln.Close()
		}
		b.closeListeners()
		if b.ownT {
			b.t.Close()
		}
		return nil, fmt.Errorf("kafka: start embedded broker on %s: %w", cfg.Addr, err)
	}
	b.cluster = c
	b.addr = c.ListenAddrs()[0]
	return b, nil
}

// Addr is the advertised host:port; clients reach it at tcp:// and
// raptor:// with this host and port.
func (b *Broker) Addr() string { return b.addr }

// Cluster returns the kfake cluster, for its control hooks.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Listeners returns the broker's dual listeners (one per kfake node).
func (b *Broker) Listeners() []*plugin.MultiListener {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*plugin.MultiListener(nil), b.lns...)
}

// Close stops the broker (persisting its state when it has a DataDir) and
// waits for its listeners. It is idempotent.
func (b *Broker) Close() error {
	var err error
	b.once.Do(func() {
		b.cluster.Close()
		err = b.closeListeners()
		if b.ownT {
			err = errors.Join(err, b.t.Close())
		}
	})
	return err
}

func (b *Broker) closeListeners() error {
	var errs []error
	for _, ln := range b.Listeners() {
		errs = append(errs, ln.Close())
		ln.Wait()
	}
	return errors.Join(errs...)
}

// kfakeLogger adapts slog to kfake.Logger.
type kfakeLogger struct{ l *slog.Logger }

// Logf logs one kfake message at the matching slog level.
func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo:
		lvl = slog.LevelInfo
	}
	if k.l.Enabled(context.Background(), lvl) {
		k.l.Log(context.Background(), lvl, fmt.Sprintf(msg, args...), "component", "kfake")
	}
}
