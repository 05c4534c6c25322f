package rafka_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/raptormq/raptor/compat/kafka"
	"github.com/raptormq/raptor/compat/rafka"
	"github.com/raptormq/raptor/reliable"
)

// The bridge serves rafka.BrokerService on a Raptor listener and stores into
// an embedded Kafka-protocol broker reached over Raptor; the client calls it
// over a Raptor dialer.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	broker, err := kafka.NewBroker(kafka.BrokerConfig{Topics: []string{"orders"}, Partitions: 1})
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	kd, _ := kafka.NewDialer()
	defer kd.Close()

	// Server side.
	bridge, err := rafka.NewBridge(rafka.Config{Brokers: []string{broker.Addr()}, Dial: kd.DialContext})
	if err != nil {
		panic(err)
	}
	ln, err := reliable.Listen("127.0.0.1:0", nil)
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	srv := grpc.NewServer()
	defer srv.Stop()
	defer bridge.Close() // first: ends the streams
	bridge.RegisterOn(srv)
	go srv.Serve(ln)

	// Client side.
	var d reliable.Dialer
	defer d.Close()
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "udp", addr)
		}))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	c := rafka.NewClient(cc)

	reg, err := c.Register(ctx, &rafka.RegisterRequest{ClientID: "billing-1", Group: "billing"})
	if err != nil {
		panic(err)
	}
	pub, err := c.Publish(ctx, &rafka.PublishRequest{Topic: "orders", Key: []byte("customer-7"), Value: []byte("order 1")})
	if err != nil {
		panic(err)
	}
	fmt.Printf("stored at partition %d offset %d\n", pub.Partition, pub.Offset)
	st, err := c.Consume(ctx, &rafka.ConsumeRequest{ConsumerID: reg.ConsumerID, Topic: "orders"})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	m, err := st.Recv()
	if err != nil {
		panic(err)
	}
	fmt.Printf("pushed: %s\n", m.Value)
	ack, err := c.Acknowledge(ctx, &rafka.AcknowledgeRequest{ConsumerID: reg.ConsumerID, Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
	if err != nil {
		panic(err)
	}
	fmt.Printf("group billing resumes at offset %d\n", ack.Committed)

	_, err = c.Publish(ctx, &rafka.PublishRequest{Topic: "nope"})
	fmt.Println(err)
	// Output:
	// stored at partition 0 offset 0
	// pushed: order 1
	// group billing resumes at offset 1
	// rafka: unknown topic "nope"
}
