package kafka

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/reliable"
)

// brokerPin returns the certificate SHA-256 of the broker's Raptor listener.
func brokerPin(t *testing.T, b *Broker) []byte {
	t.Helper()
	for _, ml := range b.Listeners() {
		for _, ln := range ml.Listeners() {
			if rl, ok := ln.(*reliable.Listener); ok {
				return rl.CertificateSHA256()
			}
		}
	}
	t.Fatal("broker has no Raptor listener")
	return nil
}

// TestKafkaOverProtectedRaptorExactlyOnce: franz-go's idempotent producer
// and a consumer reach the embedded broker over packet-protected Raptor,
// authenticating it by the pin it prints; every record arrives once, in
// order. A wrong pin fails the dial with an error naming the pin.
func TestKafkaOverProtectedRaptorExactlyOnce(t *testing.T) {
	b, err := NewBroker(BrokerConfig{Topics: []string{"t"}, Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := NewDialer(WithPinnedSHA256(brokerPin(t, b)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), d.Opt(), kgo.DefaultProduceTopic("t"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 200
	for i := 0; i < n; i++ {
		if err := prod.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("record-%03d", i))).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), d.Opt(), kgo.ConsumeTopics("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < n {
		f := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(got), n, err)
		}
		f.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if want := fmt.Sprintf("record-%03d", i); v != want {
			t.Fatalf("record %d is %q, want %q (lost, duplicated or reordered)", i, v, want)
		}
	}
	if st := d.Transport().Stats(); st.Counters[reliable.CounterDropsAuth] != 0 || st.Counters[reliable.CounterSessionsOpened] == 0 {
		t.Fatalf("dialer stats: %d sessions, %d auth drops", st.Counters[reliable.CounterSessionsOpened], st.Counters[reliable.CounterDropsAuth])
	}

	bad, err := NewDialer(WithPinnedSHA256(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	if _, err := bad.DialContext(dctx, "tcp", b.Addr()); err == nil || !bytes.Contains([]byte(err.Error()), []byte("PinnedSHA256")) {
		t.Fatalf("dial with a wrong pin: %v, want an error naming PinnedSHA256", err)
	}
}
