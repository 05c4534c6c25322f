// Package kafkastore keeps the schema registry's records on a compacted
// Kafka topic (by default "_schemas"), through franz-go, so that several
// registry instances serve the same schemas. Every instance consumes the
// whole topic and answers reads from its own copy; only the instance
// configured as primary writes (the others forward writes to it over HTTP,
// see schema/httpapi).
//
// The records are the Confluent Schema Registry's own: JSON keys
// ({"keytype":"SCHEMA","subject":..,"version":..,"magic":1}, CONFIG, MODE,
// NOOP, DELETE_SUBJECT, ...) written byte for byte as Confluent's registry
// writes them, JSON values, and a tombstone for a hard delete, so topic
// compaction keeps exactly the live state and a Raptor registry can take
// over a topic written by Confluent's (docs/SCHEMA.md, "Storage"). A record
// whose key is not a registry key is logged and skipped.
package kafkastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/raptormq/raptor/schema/registry"
)

// DefaultTopic is the topic used when Config.Topic is empty.
const DefaultTopic = "_schemas"

// ErrNotPrimary is returned by Write on an instance that is not the primary.
var ErrNotPrimary = errors.New("kafkastore: this registry instance is not the primary; writes go through the primary")

// Config configures a Store. Brokers is required.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topic is the compacted topic holding the records. Default DefaultTopic.
	Topic string
	// Primary allows this instance to write. Exactly one instance sharing a
	// topic must be primary: it allocates schema IDs and versions.
	Primary bool
	// ReplicationFactor of the topic when this store creates it. Default -1:
	// the broker's default.
	ReplicationFactor int16
	// ClientOpts are extra franz-go options (a dialer, SASL, TLS, ...).
	ClientOpts []kgo.Opt
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
}

// Store implements registry.Store on a Kafka topic.
type Store struct {
	cfg   Config
	log   *slog.Logger
	cl    *kgo.Client
	adm   *kadm.Client
	topic string

	mu      sync.Mutex
	applied int64         // next offset to apply
	moved   chan struct{} // closed and replaced whenever applied advances
	pollErr error
	ours    int64  // records read that are registry records
	foreign int64  // records read that are not
	first   string // the first foreign record, for the error

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// New connects a client; nothing is read before Start.
func New(cfg Config) (*Store, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafkastore: no brokers configured")
	}
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
	}, cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafkastore: client for %v: %w", cfg.Brokers, err)
	}
	return &Store{cfg: cfg, log: log, cl: cl, adm: kadm.NewClient(cl), topic: cfg.Topic, moved: make(chan struct{})}, nil
}

func (s *Store) ensureTopic(ctx context.Context) error {
	compact := "compact"
	_, err := s.adm.CreateTopic(ctx, 1, s.cfg.ReplicationFactor, map[string]*string{"cleanup.policy": &compact}, s.topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("kafkastore: create topic %q: %w", s.topic, err)
	}
	return nil
}

// Start creates the topic if needed, replays it to its current end, and then
// keeps applying new records in a background goroutine until Close. A topic
// holding records of which none is a schema registry record is refused
// (*ForeignTopicError): it is some other topic.
func (s *Store) Start(ctx context.Context, apply func(registry.Record)) error {
	if err := s.ensureTopic(ctx); err != nil {
		return err
	}
	pctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	go s.poll(pctx, apply)
	if err := s.Sync(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.foreign > 0 && s.ours == 0 {
		return &ForeignTopicError{Topic: s.topic, Records: s.foreign, First: s.first}
	}
	return nil
}

// ForeignTopicError reports a topic whose records are not a schema
// registry's (neither Raptor's nor Confluent's).
type ForeignTopicError struct {
	// Topic is the topic name.
	Topic string
	// Records is how many records were read.
	Records int64
	// First describes the first of them.
	First string
}

// Error implements error.
func (e *ForeignTopicError) Error() string {
	return fmt.Sprintf("kafkastore: topic %q holds %d records and none is a schema registry record (first at %s): refusing to use it as the registry's store", e.Topic, e.Records, e.First)
}

func (s *Store) poll(ctx context.Context, apply func(registry.Record)) {
	defer close(s.done)
	for {
		fetches := s.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			s.log.Warn("kafkastore: fetch error", "topic", t, "partition", p, "error", err)
		})
		var last int64 = -1
		fetches.EachRecord(func(r *kgo.Record) {
			key, err := registry.DecodeKey(r.Key)
			s.mu.Lock()
			if err != nil {
				if s.foreign++; s.foreign == 1 {
					s.first = fmt.Sprintf("offset %d: %v", r.Offset, err)
				}
			} else {
				s.ours++
			}
			s.mu.Unlock()
			if err != nil {
				s.log.Warn("kafkastore: skipping a record that is not a schema registry record", "topic", s.topic, "offset", r.Offset, "error", err)
			} else {
				apply(registry.Record{Key: key, Value: r.Value})
			}
			last = r.Offset
		})
		if last >= 0 {
			s.advance(last + 1)
		}
	}
}

func (s *Store) advance(next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if next > s.applied {
		s.applied = next
		close(s.moved)
		s.moved = make(chan struct{})
	}
}

// waitApplied blocks until every offset below next has been applied.
func (s *Store) waitApplied(ctx context.Context, next int64) error {
	for {
		s.mu.Lock()
		applied, moved := s.applied, s.moved
		s.mu.Unlock()
		if applied >= next {
			return nil
		}
		select {
		case <-moved:
		case <-s.done:
			return errors.New("kafkastore: store closed")
		case <-ctx.Done():
			return fmt.Errorf("kafkastore: waiting for offset %d of %q (applied up to %d): %w", next, s.topic, applied, ctx.Err())
		}
	}
}

// Write produces recs synchronously and waits until this instance has
// consumed and applied them. Only the primary writes.
func (s *Store) Write(ctx context.Context, recs []registry.Record) error {
	if !s.cfg.Primary {
		return ErrNotPrimary
	}
	krecs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		krecs[i] = &kgo.Record{Topic: s.topic, Partition: 0, Key: r.Key.Bytes(), Value: r.Value}
	}
	results := s.cl.ProduceSync(ctx, krecs...)
	if err := results.FirstErr(); err != nil {
		return fmt.Errorf("kafkastore: produce to %q: %w", s.topic, err)
	}
	var last int64
	for _, r := range results {
		last = max(last, r.Record.Offset)
	}
	return s.waitApplied(ctx, last+1)
}

// Sync waits until every record present on the topic when called has been
// applied. A topic that was just created may not be listed yet: the end
// offset is asked again until ctx ends.
func (s *Store) Sync(ctx context.Context) error {
	end, err := s.endOffset(ctx)
	if err != nil {
		return err
	}
	return s.waitApplied(ctx, end)
}

func (s *Store) endOffset(ctx context.Context) (int64, error) {
	backoff := 20 * time.Millisecond
	for {
		offs, err := s.adm.ListEndOffsets(ctx, s.topic)
		if err == nil {
			o, ok := offs.Lookup(s.topic, 0)
			switch {
			case ok && o.Err == nil:
				return o.Offset, nil
			case ok:
				err = o.Err
			default:
				err = errNotListed
			}
		}
		if !retriable(err) {
			return 0, fmt.Errorf("kafkastore: end offset of %q: %w", s.topic, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("kafkastore: end offset of %q: %w (last error: %v)", s.topic, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, time.Second)
	}
}

var errNotListed = errors.New("partition 0 not listed yet")

// retriable reports whether err is worth retrying: Kafka's retriable errors
// and a partition missing from a fresh topic's metadata.
func retriable(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	return errors.Is(err, errNotListed)
}

// Close stops consuming and closes the client. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		s.cl.Close()
	})
	return nil
}
