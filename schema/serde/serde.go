// Package serde is what applications use to put schema-described msgpack
// records on Kafka: an Encoder frames values with the schema ID of a
// registered writer schema (Confluent wire format: 0, big-endian ID, msgpack
// body), and a Decoder holding a reader schema fetches each writer schema by
// ID from the registry once, caches it, and resolves the data into the
// reader's shape (schema.Resolver).
package serde

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/schema"
)

// Serde fetches and caches schemas by ID from a registry through franz-go's
// registry client. It is safe for concurrent use.
type Serde struct {
	cl          *sr.Client
	notFoundTTL time.Duration
	now         func() time.Time

	mu       sync.RWMutex
	byID     map[uint32]*schema.Schema
	notFound map[uint32]notFound // IDs the registry did not know, until expiry
}

type notFound struct {
	err     error
	expires time.Time
}

// maxNotFound bounds the negative cache; it is emptied when full.
const maxNotFound = 4096

// Opt configures a Serde.
type Opt func(*Serde)

// NotFoundTTL sets how long an ID unknown to the registry is answered from
// cache before asking again, so payloads naming unknown IDs do not cost one
// registry request each. Default 5 s; 0 disables the negative cache.
func NotFoundTTL(d time.Duration) Opt { return func(s *Serde) { s.notFoundTTL = d } }

// New returns a Serde using cl.
func New(cl *sr.Client, opts ...Opt) *Serde {
	s := &Serde{cl: cl, notFoundTTL: 5 * time.Second, now: time.Now,
		byID: map[uint32]*schema.Schema{}, notFound: map[uint32]notFound{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Schema returns the schema registered under id, fetching it on first use.
func (s *Serde) Schema(ctx context.Context, id uint32) (*schema.Schema, error) {
	s.mu.RLock()
	sc, ok := s.byID[id]
	nf, cachedMiss := s.notFound[id]
	s.mu.RUnlock()
	if ok {
		return sc, nil
	}
	if cachedMiss && s.now().Before(nf.expires) {
		return nil, nf.err
	}
	got, err := s.cl.SchemaByID(ctx, int(id))
	if err != nil {
		err = fmt.Errorf("serde: fetch schema %d: %w", id, err)
		var re *sr.ResponseError
		if s.notFoundTTL > 0 && errors.As(err, &re) && re.ErrorCode == 40403 {
			s.mu.Lock()
			if len(s.notFound) >= maxNotFound {
				clear(s.notFound)
			}
			s.notFound[id] = notFound{err: err, expires: s.now().Add(s.notFoundTTL)}
			s.mu.Unlock()
		}
		return nil, err
	}
	if got.Type != sr.TypeAvro {
		return nil, fmt.Errorf("serde: schema %d is %s, want AVRO", id, got.Type)
	}
	sc, err = schema.Parse(got.Schema)
	if err != nil {
		return nil, fmt.Errorf("serde: schema %d: %w", id, err)
	}
	s.mu.Lock()
	if prev, ok := s.byID[id]; ok {
		sc = prev
	} else {
		s.byID[id] = sc
	}
	delete(s.notFound, id)
	s.mu.Unlock()
	return sc, nil
}

// Register registers text under subject (or finds it already registered)
// and returns an Encoder for it.
func (s *Serde) Register(ctx context.Context, subject, text string) (*Encoder, error) {
	sc, err := schema.Parse(text)
	if err != nil {
		return nil, err
	}
	id, err := s.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: sc.String()}, -1, -1)
	if err != nil {
		return nil, fmt.Errorf("serde: register in subject %q: %w", subject, err)
	}
	return s.encoder(id, sc)
}

// Lookup returns an Encoder for text, which must already be registered under
// subject: for producers that must not register schemas themselves.
func (s *Serde) Lookup(ctx context.Context, subject, text string) (*Encoder, error) {
	sc, err := schema.Parse(text)
	if err != nil {
		return nil, err
	}
	ss, err := s.cl.LookupSchema(ctx, subject, sr.Schema{Schema: sc.String()})
	if err != nil {
		return nil, fmt.Errorf("serde: look up schema in subject %q: %w", subject, err)
	}
	return s.encoder(ss.ID, sc)
}

func (s *Serde) encoder(id int, sc *schema.Schema) (*Encoder, error) {
	if id < 1 || int64(id) > 1<<32-1 {
		return nil, fmt.Errorf("serde: registry returned schema id %d, out of range", id)
	}
	s.mu.Lock()
	if _, ok := s.byID[uint32(id)]; !ok {
		s.byID[uint32(id)] = sc
	}
	delete(s.notFound, uint32(id))
	s.mu.Unlock()
	return &Encoder{id: uint32(id), schema: sc}, nil
}

// Encoder frames values written with one registered schema.
type Encoder struct {
	id     uint32
	schema *schema.Schema
}

// ID returns the global schema ID written in every frame.
func (e *Encoder) ID() uint32 { return e.id }

// Schema returns the writer schema.
func (e *Encoder) Schema() *schema.Schema { return e.schema }

// Append appends the framed encoding of v to dst (see schema.AppendEncode
// for the values accepted).
func (e *Encoder) Append(dst []byte, v any) ([]byte, error) {
	start := len(dst)
	dst = schema.AppendHeader(dst, e.id)
	out, err := e.schema.AppendEncode(dst, v)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// Encode returns the framed encoding of v.
func (e *Encoder) Encode(v any) ([]byte, error) { return e.Append(nil, v) }

// Decoder decodes framed payloads written with any registered schema into
// the shape of one reader schema. It is safe for concurrent use.
type Decoder struct {
	serde  *Serde
	reader *schema.Schema

	mu        sync.RWMutex
	resolvers map[uint32]*schema.Resolver
}

// NewDecoder returns a Decoder producing values shaped by reader.
func (s *Serde) NewDecoder(reader *schema.Schema) *Decoder {
	return &Decoder{serde: s, reader: reader, resolvers: map[uint32]*schema.Resolver{}}
}

func (d *Decoder) resolver(ctx context.Context, id uint32) (*schema.Resolver, error) {
	d.mu.RLock()
	r, ok := d.resolvers[id]
	d.mu.RUnlock()
	if ok {
		return r, nil
	}
	w, err := d.serde.Schema(ctx, id)
	if err != nil {
		return nil, err
	}
	r, err = schema.NewResolver(w, d.reader)
	if err != nil {
		return nil, fmt.Errorf("serde: writer schema %d: %w", id, err)
	}
	d.mu.Lock()
	d.resolvers[id] = r
	d.mu.Unlock()
	return r, nil
}

// Decode decodes one framed payload.
func (d *Decoder) Decode(ctx context.Context, payload []byte) (any, error) {
	id, body, err := schema.ParseHeader(payload)
	if err != nil {
		return nil, err
	}
	r, err := d.resolver(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.Decode(body)
}

// DecodeInto decodes one framed payload into out, a pointer to a Go value
// with msgpack tags.
func (d *Decoder) DecodeInto(ctx context.Context, payload []byte, out any) error {
	id, body, err := schema.ParseHeader(payload)
	if err != nil {
		return err
	}
	r, err := d.resolver(ctx, id)
	if err != nil {
		return err
	}
	return r.DecodeInto(body, out)
}
