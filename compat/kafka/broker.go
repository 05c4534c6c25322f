package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/raptormq/raptor/plugin"
)

// BrokerConfig configures an embedded [Broker]. Zero values mean the
// documented defaults.
type BrokerConfig struct {
	// Addr is host:port to listen on, with TCP and Raptor (UDP) on the same
	// port number. With Brokers > 1, broker i listens on port+i. Default
	// "127.0.0.1:0" (ports free in both spaces).
	Addr string
	// Brokers is the number of brokers (kfake nodes, IDs 0..N-1), each with
	// its own TCP and Raptor listener. Default 1.
	Brokers int
	// Advertise is what clients are told to connect to: a host (each
	// broker advertises it with its own listen port) or host:port (broker i
	// advertises port+i, for a NAT or port mapping in front). Default: the
	// host of Addr, or 127.0.0.1 when that is unspecified (0.0.0.0, ::).
	Advertise string
	// DataDir makes the broker persistent: state is written there and
	// reloaded on the next start. Default "" (in memory).
	DataDir string
	// Partitions is the partition count of topics created without one
	// (auto-created or Topics). Default 6.
	Partitions int
	// Topics are created at start (when not loaded from DataDir), each
	// "name" (Partitions partitions) or "name:N" (N partitions).
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

// Broker is an embedded Kafka-protocol cluster (kfake nodes) whose brokers
// each accept Kafka clients over TCP and over Raptor on one port number.
type Broker struct {
	cluster *kfake.Cluster
	t       *plugin.Transport
	ownT    bool
	addr    string

	mu   sync.Mutex
	lns  []*plugin.MultiListener
	once sync.Once

	tcpConns, raptorStreams atomic.Uint64
}

// BrokerStats counts the client connections the brokers accepted, by
// transport.
type BrokerStats struct {
	TCPConns      uint64 // TCP connections accepted
	RaptorStreams uint64 // Raptor streams accepted (and any extra listener's)
}

// Stats returns the connection counters.
func (b *Broker) Stats() BrokerStats {
	return BrokerStats{TCPConns: b.tcpConns.Load(), RaptorStreams: b.raptorStreams.Load()}
}

// NewBroker starts a broker.
func NewBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 6
	}
	if cfg.Brokers <= 0 {
		cfg.Brokers = 1
	}
	seeds, err := parseTopics(cfg.Topics, cfg.Partitions)
	if err != nil {
		return nil, err
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
	advHost, advPort := cfg.Advertise, -1
	if h, p, err := net.SplitHostPort(cfg.Advertise); err == nil {
		n, perr := strconv.ParseUint(p, 10, 16)
		if perr != nil || n == 0 {
			return nil, fmt.Errorf("kafka: advertise %q: port %q is not a number from 1 to 65535", cfg.Advertise, p)
		}
		advHost, advPort = h, int(n)
	}
	if pn != 0 && int(pn)+cfg.Brokers-1 > 65535 {
		return nil, fmt.Errorf("kafka: %d brokers from port %d run past 65535", cfg.Brokers, pn)
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
		kfake.NumBrokers(cfg.Brokers),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.ListenFn(func(_, address string) (net.Listener, error) {
			// kfake asks for 127.0.0.1:<port>; we keep its port and our host.
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			extra := cfg.Listeners
			cfg.Listeners = nil // the first kfake node takes them
			ln, err := b.t.ListenDual(net.JoinHostPort(host, p), extra...)
			if err != nil {
				return nil, err
			}
			b.mu.Lock()
			idx := len(b.lns)
			b.lns = append(b.lns, ln)
			b.mu.Unlock()
			_, bound, _ := net.SplitHostPort(ln.Listeners()[0].Addr().String())
			adv := net.JoinHostPort(advHost, bound)
			if advPort > 0 {
				adv = net.JoinHostPort(advHost, strconv.Itoa(advPort+idx))
			}
			return &countingListener{MultiListener: ln, b: b, addr: advertised(adv)}, nil
		}),
	}
	if pn != 0 {
		ports := make([]int, cfg.Brokers)
		for i := range ports {
			ports[i] = int(pn) + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	for _, st := range seeds {
		opts = append(opts, kfake.SeedTopics(st.partitions, st.name))
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

// Addr is the first broker's advertised host:port; clients reach it at
// tcp:// and raptor:// with this host and port (when not advertised
// through a port mapping).
func (b *Broker) Addr() string { return b.addr }

// Addrs are every broker's advertised host:port, in node ID order at start
// (brokers added later with Cluster().AddNode follow).
func (b *Broker) Addrs() []string { return b.cluster.ListenAddrs() }

type seedTopic struct {
	name       string
	partitions int32
}

// parseTopics reads "name" and "name:N" topic specifications.
func parseTopics(specs []string, def int) ([]seedTopic, error) {
	var out []seedTopic
	for _, s := range specs {
		name, n, hasN := strings.Cut(s, ":")
		p := def
		if hasN {
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("kafka: topic %q: partition count %q is not a positive number", s, n)
			}
			p = v
		}
		if name == "" {
			return nil, fmt.Errorf("kafka: topic %q has no name", s)
		}
		out = append(out, seedTopic{name, int32(p)})
	}
	return out, nil
}

// countingListener is what kfake listens on: it counts accepted
// connections by transport and reports the advertised address.
type countingListener struct {
	*plugin.MultiListener
	b    *Broker
	addr net.Addr
}

// Accept counts and returns the next connection.
func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.MultiListener.Accept()
	if err == nil {
		if _, tcp := c.(*net.TCPConn); tcp {
			l.b.tcpConns.Add(1)
		} else {
			l.b.raptorStreams.Add(1)
		}
	}
	return c, err
}

// Addr is the advertised address, which kfake puts in its metadata.
func (l *countingListener) Addr() net.Addr { return l.addr }

type advertised string

// Network is "tcp".
func (a advertised) Network() string { return "tcp" }

// String is the advertised host:port.
func (a advertised) String() string { return string(a) }

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
