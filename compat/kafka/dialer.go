package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// DialerOption configures a [Dialer]. Each option states its default.
type DialerOption func(*dialerConfig)

type dialerConfig struct {
	transport  *plugin.Transport
	topts      []plugin.Option
	scheme     string
	brokers    map[string][]string
	failover   plugin.FailoverConfig
	logger     *slog.Logger
	configErrs []error
	raptorCfg  *reliable.Config // WithTLS, WithPinnedSHA256 (tls.go)
}

// WithTransport dials through t, which the caller closes. Default: a new
// plugin.Transport owned (and closed) by the Dialer.
func WithTransport(t *plugin.Transport) DialerOption {
	return func(c *dialerConfig) { c.transport = t }
}

// WithTransportOptions passes options to the Dialer's own transport (for
// example plugin.WithRaptorConfig or plugin.WithPacketConn). Ignored with
// WithTransport. Default: none.
func WithTransportOptions(opts ...plugin.Option) DialerOption {
	return func(c *dialerConfig) { c.topts = append(c.topts, opts...) }
}

// WithScheme sets the scheme used for brokers without an explicit mapping:
// plugin.SchemeRaptor (the default), plugin.SchemeRaptorDPDK or
// plugin.SchemeTCP.
func WithScheme(scheme string) DialerOption {
	return func(c *dialerConfig) { c.scheme = scheme }
}

// WithBrokerMap maps advertised broker addresses (host:port, as in the
// cluster's metadata) to endpoint URLs, for example
// {"kafka-1:9092": "raptor://10.0.0.7:7000"}. Default: none (every broker is
// reached on its advertised host and port with the default scheme).
func WithBrokerMap(m map[string]string) DialerOption {
	return func(c *dialerConfig) {
		for broker, ep := range m {
			c.brokers[broker] = []string{ep}
		}
	}
}

// WithGateways reaches the broker advertised as broker (host:port) through
// any of the gateways (endpoint URLs), with failover: one circuit breaker
// per gateway, new connections spread over the healthy ones. A seed broker
// address counts as a broker too. Default: none.
func WithGateways(broker string, gateways ...string) DialerOption {
	return func(c *dialerConfig) {
		if len(gateways) == 0 {
			c.configErrs = append(c.configErrs, fmt.Errorf("kafka: WithGateways(%q) without gateways", broker))
			return
		}
		c.brokers[broker] = append([]string(nil), gateways...)
	}
}

// WithFailover configures the failover dialers made for WithGateways.
// Default: the plugin.FailoverConfig defaults.
func WithFailover(cfg plugin.FailoverConfig) DialerOption {
	return func(c *dialerConfig) { c.failover = cfg }
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) DialerOption {
	return func(c *dialerConfig) { c.logger = l }
}

// Dialer dials Kafka brokers over Raptor for franz-go. Use [Dialer.Opt] as a
// kgo.Opt, and Close the Dialer after the client.
type Dialer struct {
	t       *plugin.Transport
	ownT    bool
	scheme  string
	mapped  map[string]plugin.Endpoint        // single-endpoint mappings
	fos     map[string]*plugin.FailoverDialer // gateway lists
	closeMu sync.Mutex
	closed  bool
}

// NewDialer returns a Dialer. Every endpoint URL given in options is checked
// here; a bad one is a *plugin.SchemeError or *plugin.AddrError naming it.
func NewDialer(opts ...DialerOption) (*Dialer, error) {
	c := dialerConfig{scheme: plugin.SchemeRaptor, brokers: map[string][]string{}}
	for _, o := range opts {
		o(&c)
	}
	if err := errors.Join(c.configErrs...); err != nil {
		return nil, err
	}
	if _, err := plugin.ParseEndpoint(c.scheme + "://127.0.0.1:1"); err != nil {
		return nil, err
	}
	d := &Dialer{t: c.transport, scheme: c.scheme, mapped: map[string]plugin.Endpoint{}, fos: map[string]*plugin.FailoverDialer{}}
	if d.t == nil {
		topts := c.topts
		if c.logger != nil {
			topts = append([]plugin.Option{plugin.WithLogger(c.logger)}, topts...)
		}
		if c.raptorCfg != nil {
			topts = append(topts, plugin.WithRaptorConfig(c.raptorCfg))
		}
		d.t, d.ownT = plugin.New(topts...), true
	}
	fcfg := c.failover
	if fcfg.Logger == nil && c.logger != nil {
		fcfg.Logger = c.logger
	}
	for broker, eps := range c.brokers {
		if _, _, err := net.SplitHostPort(broker); err != nil {
			d.Close()
			return nil, fmt.Errorf("kafka: broker address %q is not host:port: %w", broker, err)
		}
		if len(eps) == 1 {
			ep, err := plugin.ParseEndpoint(eps[0])
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("kafka: endpoint for broker %s: %w", broker, err)
			}
			d.mapped[broker] = ep
			continue
		}
		fo, err := plugin.NewFailoverDialer(d.t, eps, fcfg)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("kafka: gateways for broker %s: %w", broker, err)
		}
		d.fos[broker] = fo
	}
	return d, nil
}

// Endpoint returns the endpoint URL(s) the Dialer uses for the broker
// advertised as host:port.
func (d *Dialer) Endpoint(host string) []string {
	if fo := d.fos[host]; fo != nil {
		var out []string
		for _, s := range fo.Status() {
			out = append(out, s.Endpoint)
		}
		return out
	}
	if ep, ok := d.mapped[host]; ok {
		return []string{ep.String()}
	}
	return []string{d.scheme + "://" + host}
}

// DialContext dials the broker advertised as host (host:port) over its
// Raptor endpoint. It has kgo.Dialer's signature; network is ignored.
func (d *Dialer) DialContext(ctx context.Context, _, host string) (net.Conn, error) {
	if fo := d.fos[host]; fo != nil {
		return fo.Dial(ctx)
	}
	ep, ok := d.mapped[host]
	if !ok {
		ep = plugin.Endpoint{Scheme: d.scheme, Addr: host}
	}
	return d.t.DialEndpoint(ctx, ep)
}

// Opt returns kgo.Dialer(d.DialContext), to pass to kgo.NewClient.
func (d *Dialer) Opt() kgo.Opt { return kgo.Dialer(d.DialContext) }

// Failover returns the failover dialer of a broker given gateways with
// WithGateways, or nil.
func (d *Dialer) Failover(broker string) *plugin.FailoverDialer { return d.fos[broker] }

// Transport returns the transport the Dialer dials through.
func (d *Dialer) Transport() *plugin.Transport { return d.t }

// Close ends the Dialer's Raptor sessions when it owns its transport. Close
// the franz-go client first. Close is idempotent.
func (d *Dialer) Close() error {
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	for _, fo := range d.fos {
		fo.Close()
	}
	if d.ownT {
		return d.t.Close()
	}
	return nil
}
