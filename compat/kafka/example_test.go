package kafka_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/compat/kafka"
)

// A franz-go application moves to Raptor by adding one option: every broker
// is then dialed at raptor://<its advertised host:port>.
func Example() {
	raptor, err := kafka.NewDialer()
	if err != nil {
		panic(err)
	}
	defer raptor.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:9092"), raptor.Opt())
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	err = cl.ProduceSync(context.Background(), &kgo.Record{Topic: "events", Value: []byte("hi")}).FirstErr()
	fmt.Println(err)
}

// An embedded broker serves TCP and Raptor on one port number.
func ExampleNewBroker() {
	b, err := kafka.NewBroker(kafka.BrokerConfig{Topics: []string{"events"}, Partitions: 1})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	raptor, _ := kafka.NewDialer()
	defer raptor.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(b.Addr()), raptor.Opt(), kgo.ConsumeTopics("events"))
	defer cl.Close()
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("hello over Raptor")}).FirstErr(); err != nil {
		panic(err)
	}
	fetches := cl.PollFetches(ctx)
	fmt.Println(string(fetches.Records()[0].Value))
	// Output: hello over Raptor
}
