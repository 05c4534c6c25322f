package kafkarelay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/raptormq/raptor/plugin"
)

// Config configures a [Relay]. Zero values mean the documented defaults.
type Config struct {
	// Listen is the endpoint URL of the bootstrap listener, for example
	// tcp://127.0.0.1:9092 (proxy) or raptor://0.0.0.0:9092 (gateway).
	// Required. Broker listeners use its scheme and host.
	Listen string
	// Upstreams are the bootstrap brokers' endpoint URLs, for example
	// raptor://127.0.0.1:19092 or tcp://kafka-1:9092. Required; with more
	// than one the bootstrap listener fails over between them.
	Upstreams []string
	// BrokerScheme is the scheme used to reach a broker at the host:port
	// its metadata names. Default: the scheme of Upstreams[0].
	BrokerScheme string
	// Advertise is the host clients are told to connect to for each
	// broker. Default: the host of Listen, or 127.0.0.1 when that is
	// unspecified (0.0.0.0, ::).
	Advertise string
	// BrokerPorts is the port range "first-last" of the broker listeners;
	// brokers get ports in the order they first appear (by node ID within
	// one response) and keep them while the relay runs. Default: the 256
	// ports after the port of Listen (9093-9348 for 9092), or ports the
	// system picks when Listen's port is 0.
	BrokerPorts string
	// Relay sets limits and timeouts; its Upstreams, WrapUpstream,
	// Transport and Logger are set by the Relay. Default: the
	// plugin.RelayConfig defaults with FramingKafka.
	Relay plugin.RelayConfig
	// Transport listens and dials. Default: a new plugin.Transport owned by
	// the Relay.
	Transport *plugin.Transport
	// Logger receives broker listener events. Default: the transport's.
	Logger *slog.Logger
}

// Broker is one broker as the relay serves it.
type Broker struct {
	NodeID     int32
	Upstream   string // endpoint URL the relay forwards to
	Advertised string // host:port clients are told
	Bound      string // the listener's local address
}

// Stats are the relay's own counters; the forwarding counters are in
// [Relay.Relay]'s Stats.
type Stats struct {
	Rewritten     uint64           // responses whose broker addresses were rewritten
	RewrittenBy   map[int16]uint64 // the same by request key (3 Metadata, 0 Produce, ...)
	ParseFailures uint64           // responses that did not parse (forwarded unchanged)
	Opened        uint64           // broker listeners opened
	Closed        uint64           // broker listeners closed (broker left or moved)
	ListenErrors  uint64           // broker listeners that could not be opened
}

// Relay fronts a whole Kafka cluster from one bootstrap listener plus one
// listener per broker. See the package documentation.
type Relay struct {
	cfg       Config
	t         *plugin.Transport
	ownT      bool
	relay     *plugin.Relay
	log       *slog.Logger
	scheme    string // of the listeners
	host      string // listen host
	advertise string
	first     int // first port of the range; 0: system-picked ports
	last      int
	boot      net.Listener
	bootAddr  string
	wg        sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	nodes   map[int32]*node
	ports   map[int32]int // node ID -> assigned port, kept when a broker leaves
	nextP   int
	serveCh chan error

	rewritten, parseFails, opened, closedN, listenErrs atomic.Uint64
	byKey                                              [128]atomic.Uint64 // rewritten responses by key
}

type node struct {
	id       int32
	upstream string // host:port as the cluster names it
	ln       net.Listener
	adv      string
	advPort  int32
}

// New starts a relay: it listens on cfg.Listen and serves at once.
func New(cfg Config) (*Relay, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("kafkarelay: at least one upstream broker URL is needed")
	}
	lep, err := plugin.ParseEndpoint(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("kafkarelay: listen: %w", err)
	}
	uep, err := plugin.ParseEndpoint(cfg.Upstreams[0])
	if err != nil {
		return nil, fmt.Errorf("kafkarelay: upstream: %w", err)
	}
	if cfg.BrokerScheme == "" {
		cfg.BrokerScheme = uep.Scheme
	}
	if _, err := plugin.ParseEndpoint(cfg.BrokerScheme + "://127.0.0.1:1"); err != nil {
		return nil, fmt.Errorf("kafkarelay: broker scheme: %w", err)
	}
	host, port, _ := net.SplitHostPort(lep.Addr)
	r := &Relay{cfg: cfg, scheme: lep.Scheme, host: host, nodes: map[int32]*node{}, ports: map[int32]int{}, serveCh: make(chan error, 1)}
	r.advertise = cfg.Advertise
	if r.advertise == "" {
		r.advertise = host
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			r.advertise = "127.0.0.1"
		}
	}
	lport, _ := strconv.Atoi(port)
	switch {
	case cfg.BrokerPorts != "":
		r.first, r.last, err = parseRange(cfg.BrokerPorts)
		if err != nil {
			return nil, err
		}
	case lport != 0:
		r.first, r.last = lport+1, min(lport+256, 65535)
		if r.first > 65535 {
			return nil, fmt.Errorf("kafkarelay: listen port %d leaves no room for broker ports; set BrokerPorts", lport)
		}
	}
	r.nextP = r.first
	r.t = cfg.Transport
	if r.t == nil {
		var opts []plugin.Option
		if cfg.Logger != nil {
			opts = append(opts, plugin.WithLogger(cfg.Logger))
		}
		r.t, r.ownT = plugin.New(opts...), true
	}
	r.log = cfg.Logger
	if r.log == nil {
		r.log = r.t.Logger()
	}
	rc := cfg.Relay
	if rc.Framing == plugin.FramingRaw {
		rc.Framing = plugin.FramingKafka
	}
	rc.Upstreams, rc.Transport, rc.Logger = cfg.Upstreams, r.t, r.log
	rc.WrapUpstream = func(up net.Conn) net.Conn {
		c := newConn(up, r, r.parseFailed)
		c.onRewrite = func(key int16) {
			r.rewritten.Add(1)
			if key >= 0 && int(key) < len(r.byKey) {
				r.byKey[key].Add(1)
			}
		}
		return c
	}
	r.relay, err = plugin.NewRelay(rc)
	if err != nil {
		r.closeTransport()
		return nil, err
	}
	r.boot, err = r.t.ListenEndpoint(lep)
	if err != nil {
		r.relay.Close()
		r.closeTransport()
		return nil, err
	}
	_, bport, _ := net.SplitHostPort(r.boot.Addr().String())
	r.bootAddr = net.JoinHostPort(r.advertise, bport)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.serveCh <- r.relay.Serve(r.boot)
	}()
	return r, nil
}

func parseRange(s string) (first, last int, err error) {
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.Atoi(strings.TrimSpace(a))
	last, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return 0, 0, fmt.Errorf("kafkarelay: broker ports %q: want first-last, two ports from 1 to 65535, first <= last", s)
	}
	return first, last, nil
}

func (r *Relay) closeTransport() {
	if r.ownT {
		r.t.Close()
	}
}

func (r *Relay) parseFailed(err error) {
	r.parseFails.Add(1)
	r.log.Warn("kafkarelay: response forwarded unchanged", "err", err)
}

// Addr is the advertised host:port of the bootstrap listener.
func (r *Relay) Addr() string { return r.bootAddr }

// BoundAddr is the bootstrap listener's local address.
func (r *Relay) BoundAddr() net.Addr { return r.boot.Addr() }

// Relay is the underlying forwarding relay, for its counters.
func (r *Relay) Relay() *plugin.Relay { return r.relay }

// Served returns a channel that gets the bootstrap listener's Serve
// result when it stops (plugin.ErrRelayClosed after Shutdown or Close).
func (r *Relay) Served() <-chan error { return r.serveCh }

// Stats returns the rewriting counters.
func (r *Relay) Stats() Stats {
	by := map[int16]uint64{}
	for k := range r.byKey {
		if n := r.byKey[k].Load(); n > 0 {
			by[int16(k)] = n
		}
	}
	return Stats{Rewritten: r.rewritten.Load(), RewrittenBy: by, ParseFailures: r.parseFails.Load(), Opened: r.opened.Load(),
		Closed: r.closedN.Load(), ListenErrors: r.listenErrs.Load()}
}

// Listeners returns the bootstrap listener and the broker listeners open
// now.
func (r *Relay) Listeners() []net.Listener {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []net.Listener{r.boot}
	for _, n := range r.nodes {
		out = append(out, n.ln)
	}
	return out
}

// Brokers lists the brokers served now, by node ID.
func (r *Relay) Brokers() []Broker {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Broker, 0, len(r.nodes))
	for _, n := range r.nodes {
		out = append(out, Broker{NodeID: n.id, Upstream: r.cfg.BrokerScheme + "://" + n.upstream, Advertised: n.adv, Bound: n.ln.Addr().String()})
	}
	slices.SortFunc(out, func(a, b Broker) int { return int(a.NodeID - b.NodeID) })
	return out
}

// local implements mapper: the listener for node at host:port, opened on
// first sight and reopened when the broker's address changed.
func (r *Relay) local(id int32, host string, port int32) (string, int32, bool) {
	up := net.JoinHostPort(host, strconv.Itoa(int(port)))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return "", 0, false
	}
	if n := r.nodes[id]; n != nil {
		if n.upstream == up || n.adv == up {
			if n.adv == up { // already ours (a response seen twice)
				return host, port, true
			}
			return r.advertise, n.advPort, true
		}
		r.closeNodeLocked(n, "address changed to "+up)
	}
	n, err := r.openLocked(id, up)
	if err != nil {
		r.listenErrs.Add(1)
		r.log.Warn("kafkarelay: cannot open a listener for a broker; its address goes to clients unchanged", "node", id, "broker", up, "err", err)
		return "", 0, false
	}
	return r.advertise, n.advPort, true
}

// brokers implements mapper: listeners of brokers not in all are closed.
func (r *Relay) brokers(all []brokerAddr) {
	if len(all) == 0 {
		return // an error response, not an empty cluster
	}
	live := map[int32]bool{}
	for _, b := range all {
		live[b.node] = true
	}
	// Open new brokers by node ID order so port assignment is stable.
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, func(a, b brokerAddr) int { return int(a.node - b.node) })
	for _, b := range sorted {
		r.mu.Lock()
		_, known := r.nodes[b.node]
		r.mu.Unlock()
		if !known && b.node >= 0 {
			r.local(b.node, b.host, b.port)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, n := range r.nodes {
		if !live[id] {
			r.closeNodeLocked(n, "left the cluster")
		}
	}
}

func (r *Relay) openLocked(id int32, up string) (*node, error) {
	port, assigned := r.ports[id]
	if !assigned && r.first != 0 {
		if r.nextP > r.last {
			return nil, fmt.Errorf("broker port range %d-%d exhausted", r.first, r.last)
		}
		port = r.nextP
		r.nextP++
		r.ports[id] = port
	}
	ep := plugin.Endpoint{Scheme: r.scheme, Addr: net.JoinHostPort(r.host, strconv.Itoa(port))}
	ln, err := r.t.ListenEndpoint(ep)
	if err != nil {
		return nil, err
	}
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	pn, _ := strconv.Atoi(p)
	if !assigned && r.first == 0 {
		r.ports[id] = pn
	}
	n := &node{id: id, upstream: up, ln: ln, adv: net.JoinHostPort(r.advertise, p), advPort: int32(pn)}
	r.nodes[id] = n
	r.opened.Add(1)
	upURL := r.cfg.BrokerScheme + "://" + up
	r.log.Info("kafkarelay: serving broker", "node", id, "listen", r.scheme+"://"+ln.Addr().String(), "advertised", n.adv, "upstream", upURL)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := r.relay.ServeUpstream(ln, upURL)
		if err != nil && !errors.Is(err, plugin.ErrRelayClosed) && !errors.Is(err, net.ErrClosed) {
			r.log.Warn("kafkarelay: broker listener stopped", "node", id, "err", err)
		}
	}()
	return n, nil
}

func (r *Relay) closeNodeLocked(n *node, why string) {
	delete(r.nodes, n.id)
	n.ln.Close()
	r.closedN.Add(1)
	r.log.Info("kafkarelay: broker listener closed", "node", n.id, "advertised", n.adv, "why", why)
}

// Shutdown drains the relay (see plugin.Relay.Shutdown) and closes it.
func (r *Relay) Shutdown(ctx context.Context) error {
	err := r.relay.Shutdown(ctx)
	r.Close()
	return err
}

// Close stops the relay at once and closes every listener. It is
// idempotent. Live connections are cut by the relay first, so they count
// in ForceClosed (and their Raptor streams are reset with CodeDraining);
// closing a broker's listener first used to end them as failed streams,
// counted nowhere.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.relay.Close() // every connection, then the listeners it serves (the brokers' among them)
	r.mu.Lock()
	for _, n := range r.nodes {
		n.ln.Close() // a broker listener not served yet
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.closeTransport()
	return nil
}
