package kafkabench

import (
	"context"
	"errors"
	"io"
	"net"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/benchkit"
	"github.com/raptormq/raptor/plugin/kafkarelay"
)

// ViaProxy is the path a client that cannot link Go takes to Kafka over
// Raptor (`raptor bench kafka --via proxy`): franz-go over plain TCP to a
// Kafka-aware `raptor proxy`, which carries each connection over Raptor to
// compat/kafka's embedded broker. Only the kafka suite runs over it.
type ViaProxy struct{}

var _ benchkit.KafkaStack = ViaProxy{}

// Name returns "tcp-proxy-raptor".
func (ViaProxy) Name() string { return "tcp-proxy-raptor" }

// Listen listens on TCP; the kafka suite does not use it.
func (ViaProxy) Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// Dial dials TCP.
func (ViaProxy) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// KafkaBroker starts the embedded broker on addr and a Kafka-aware proxy
// in front of it; the returned server's Addr is the proxy's.
func (ViaProxy) KafkaBroker(ctx context.Context, addr string) (benchkit.Server, error) {
	b, err := kafka.NewBroker(kafka.BrokerConfig{Addr: addr, Partitions: 1})
	if err != nil {
		return nil, err
	}
	px, err := kafkarelay.New(kafkarelay.Config{Listen: "tcp://127.0.0.1:0", Upstreams: []string{"raptor://" + b.Addr()}})
	if err != nil {
		b.Close()
		return nil, err
	}
	return &proxiedBroker{b: b, px: px}, nil
}

// KafkaDialer is plain TCP: the client knows nothing of Raptor.
func (ViaProxy) KafkaDialer() (kgo.Opt, io.Closer, error) {
	var d net.Dialer
	return kgo.Dialer(d.DialContext), io.NopCloser(nil), nil
}

type proxiedBroker struct {
	b  *kafka.Broker
	px *kafkarelay.Relay
}

func (p *proxiedBroker) Addr() string { return p.px.Addr() }

func (p *proxiedBroker) Close() error { return errors.Join(p.px.Close(), p.b.Close()) }
