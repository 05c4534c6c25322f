// Package kafkabench carries the bench's Kafka suite over Raptor the way
// users run Kafka over Raptor: compat/kafka's embedded broker (TCP and
// Raptor on one port number) and its dialer (broker host:port → raptor://
// on the same port). It lives here, above compat/kafka, so that
// internal/benchkit imports nothing above reliable; the commands that run
// the bench (raptor, raptor-bench-all) call [Register].
package kafkabench

import (
	"context"
	"io"
	"net"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/internal/benchkit"
	"github.com/raptormq/raptor/plugin"
	"github.com/raptormq/raptor/reliable"
)

// Raptor is benchkit's Raptor transport whose Kafka suite runs through
// compat/kafka ([benchkit.KafkaStack]).
type Raptor struct {
	*benchkit.Raptor
}

var _ benchkit.KafkaStack = Raptor{}

// KafkaBroker starts compat/kafka's embedded broker on addr, with one
// partition per topic and the transport's Config.
func (r Raptor) KafkaBroker(ctx context.Context, addr string) (benchkit.Server, error) {
	return kafka.NewBroker(kafka.BrokerConfig{Addr: addr, Partitions: 1,
		TransportOptions: []plugin.Option{plugin.WithRaptorConfig(r.Config)}})
}

// KafkaDialer returns compat/kafka's dialer (with the transport's Config)
// as a franz-go option, and the dialer to close after the client.
func (r Raptor) KafkaDialer() (kgo.Opt, io.Closer, error) {
	// The dial side's Config: a remote `serve` broker has no pin to check.
	d, err := kafka.NewDialer(kafka.WithTransportOptions(plugin.WithRaptorConfig(r.DialConfig())))
	if err != nil {
		return nil, nil, err
	}
	// The sessions of the conns it dials count in RunStats, as the
	// transport's own dials do.
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, host)
		if err == nil {
			r.Track(c)
		}
		return c, err
	}), d, nil
}

// Register replaces reg's raptor and raptor-plaintext transports with ones
// whose Kafka suite runs through compat/kafka, so that the two differ in
// packet protection only (raptor-plaintext: reliable.Config.InsecurePlaintext
// on both sides, as benchkit's own), and adds the `--via proxy` path
// ([ViaProxy]).
func Register(reg *benchkit.Registry) {
	reg.Add(Raptor{Raptor: &benchkit.Raptor{}})
	reg.Add(Raptor{Raptor: &benchkit.Raptor{Label: "raptor-plaintext", Config: &reliable.Config{InsecurePlaintext: true}}})
	reg.AddVia("proxy", ViaProxy{})
}

// RegisterNewReno adds raptor-newreno: Raptor with Config.Congestion
// "newreno" instead of the default CUBIC, to compare the two in one run
// (raptor-bench-all registers it; `raptor bench` does not).
func RegisterNewReno(reg *benchkit.Registry) {
	reg.Add(Raptor{Raptor: &benchkit.Raptor{Label: "raptor-newreno", Config: &reliable.Config{Congestion: "newreno"}}})
}
