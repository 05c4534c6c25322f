// Package serde is what applications use to put schema-described records on
// Kafka: an Encoder frames values with the schema ID of a registered writer
// schema, in one of two formats told apart by the first byte — Confluent's
// wire format (0x00, big-endian ID, Avro binary body), which Confluent's
// serializers share, or Raptor's msgpack framing (0x4D, ID, msgpack body) —
// and a Decoder holding a reader schema fetches each writer schema by ID from
// the registry once, caches it, and resolves the data into the reader's
// shape (schema.Resolver), whichever format it came in.
package serde

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	format      schema.Format
	subjects    map[string]schema.Format

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

// PayloadFormat sets the format of the encoders this Serde returns.
// Default schema.FormatMsgpack; schema.FormatAvro writes Confluent's wire
// format, readable by Confluent's Avro deserializers.
func PayloadFormat(f schema.Format) Opt { return func(s *Serde) { s.format = f } }

// SubjectFormat sets the format of the encoders for one subject, over
// PayloadFormat: for example Avro for a topic shared with Confluent clients.
func SubjectFormat(subject string, f schema.Format) Opt {
	return func(s *Serde) { s.subjects[subject] = f }
}

// New returns a Serde using cl.
func New(cl *sr.Client, opts ...Opt) *Serde {
	s := &Serde{cl: cl, notFoundTTL: 5 * time.Second, now: time.Now, format: schema.FormatMsgpack,
		subjects: map[string]schema.Format{},
		byID:     map[uint32]*schema.Schema{}, notFound: map[uint32]notFound{}}
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
	var refs []string
	if len(got.References) > 0 {
		if refs, err = s.references(ctx, got.References, 0, map[string]bool{}); err != nil {
			return nil, fmt.Errorf("serde: schema %d: %w", id, err)
		}
	}
	sc, err = schema.ParseWithReferences(got.Schema, refs)
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

// maxRefDepth bounds chains of schema references.
const maxRefDepth = 32

// references fetches the texts of refs and of theirs, deepest first, each
// name once.
func (s *Serde) references(ctx context.Context, refs []sr.SchemaReference, depth int, seen map[string]bool) ([]string, error) {
	if depth > maxRefDepth {
		return nil, fmt.Errorf("references nested deeper than %d", maxRefDepth)
	}
	var out []string
	for _, r := range refs {
		if seen[r.Name] {
			continue
		}
		seen[r.Name] = true
		got, err := s.cl.SchemaByVersion(ctx, r.Subject, r.Version)
		if err != nil {
			return nil, fmt.Errorf("reference %q (subject %q version %d): %w", r.Name, r.Subject, r.Version, err)
		}
		inner, err := s.references(ctx, got.References, depth+1, seen)
		if err != nil {
			return nil, err
		}
		out = append(append(out, inner...), got.Schema.Schema)
	}
	return out, nil
}

// Register registers text under subject (or finds it already registered)
// and returns an Encoder for it, in the subject's payload format. The text
// is registered as given; refs name the registered schemas it uses.
func (s *Serde) Register(ctx context.Context, subject, text string, refs ...sr.SchemaReference) (*Encoder, error) {
	sc, err := s.parse(ctx, text, refs)
	if err != nil {
		return nil, err
	}
	id, err := s.cl.RegisterSchema(ctx, subject, sr.Schema{Schema: text, References: refs}, -1, -1)
	if err != nil {
		return nil, fmt.Errorf("serde: register in subject %q: %w", subject, err)
	}
	return s.encoder(id, sc, s.formatOf(subject))
}

// Lookup returns an Encoder for text, which must already be registered under
// subject: for producers that must not register schemas themselves.
func (s *Serde) Lookup(ctx context.Context, subject, text string, refs ...sr.SchemaReference) (*Encoder, error) {
	sc, err := s.parse(ctx, text, refs)
	if err != nil {
		return nil, err
	}
	ss, err := s.cl.LookupSchema(ctx, subject, sr.Schema{Schema: text, References: refs})
	if err != nil {
		return nil, fmt.Errorf("serde: look up schema in subject %q: %w", subject, err)
	}
	return s.encoder(ss.ID, sc, s.formatOf(subject))
}

func (s *Serde) parse(ctx context.Context, text string, refs []sr.SchemaReference) (*schema.Schema, error) {
	var texts []string
	if len(refs) > 0 {
		var err error
		if texts, err = s.references(ctx, refs, 0, map[string]bool{}); err != nil {
			return nil, fmt.Errorf("serde: %w", err)
		}
	}
	return schema.ParseWithReferences(text, texts)
}

func (s *Serde) formatOf(subject string) schema.Format {
	if f, ok := s.subjects[subject]; ok {
		return f
	}
	return s.format
}

func (s *Serde) encoder(id int, sc *schema.Schema, f schema.Format) (*Encoder, error) {
	if id < 1 || int64(id) > 1<<32-1 {
		return nil, fmt.Errorf("serde: registry returned schema id %d, out of range", id)
	}
	s.mu.Lock()
	if _, ok := s.byID[uint32(id)]; !ok {
		s.byID[uint32(id)] = sc
	}
	delete(s.notFound, uint32(id))
	s.mu.Unlock()
	return &Encoder{id: uint32(id), schema: sc, format: f}, nil
}

// Encoder frames values written with one registered schema, in one format.
type Encoder struct {
	id     uint32
	schema *schema.Schema
	format schema.Format
}

// Format returns the payload format written.
func (e *Encoder) Format() schema.Format { return e.format }

// ID returns the global schema ID written in every frame.
func (e *Encoder) ID() uint32 { return e.id }

// Schema returns the writer schema.
func (e *Encoder) Schema() *schema.Schema { return e.schema }

// Append appends the framed encoding of v to dst (see schema.AppendEncode
// for the values accepted).
func (e *Encoder) Append(dst []byte, v any) ([]byte, error) {
	start := len(dst)
	dst = schema.AppendFrameHeader(dst, e.format, e.id)
	var out []byte
	var err error
	if e.format == schema.FormatAvro {
		out, err = e.schema.AppendAvro(dst, v)
	} else {
		out, err = e.schema.AppendEncode(dst, v)
	}
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
	serde    *Serde
	reader   *schema.Schema
	accepted []schema.Format

	mu        sync.RWMutex
	resolvers map[uint32]*schema.Resolver
}

// DecoderOpt configures a Decoder.
type DecoderOpt func(*Decoder)

// AcceptFormats restricts the payload formats a Decoder takes; a payload in
// another is a *schema.FormatError. Default: every format (schema.Formats),
// each told by its magic byte.
func AcceptFormats(fs ...schema.Format) DecoderOpt {
	return func(d *Decoder) { d.accepted = slices.Clone(fs) }
}

// NewDecoder returns a Decoder producing values shaped by reader.
func (s *Serde) NewDecoder(reader *schema.Schema, opts ...DecoderOpt) *Decoder {
	d := &Decoder{serde: s, reader: reader, accepted: schema.Formats, resolvers: map[uint32]*schema.Resolver{}}
	for _, o := range opts {
		o(d)
	}
	return d
}

// frame splits payload and returns its resolver and msgpack body (an Avro
// body is transcoded with the writer schema).
func (d *Decoder) frame(ctx context.Context, payload []byte) (*schema.Resolver, []byte, error) {
	f, id, body, err := schema.ParseFrame(payload)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(d.accepted, f) {
		return nil, nil, &schema.FormatError{Got: f, Accepted: d.accepted}
	}
	r, err := d.resolver(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if f == schema.FormatAvro {
		if body, err = r.Writer().AvroToMsgpack(nil, body); err != nil {
			return nil, nil, fmt.Errorf("serde: Avro payload of schema %d: %w", id, err)
		}
	}
	return r, body, nil
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

// Decode decodes one framed payload, in any accepted format.
func (d *Decoder) Decode(ctx context.Context, payload []byte) (any, error) {
	r, body, err := d.frame(ctx, payload)
	if err != nil {
		return nil, err
	}
	return r.Decode(body)
}

// DecodeInto decodes one framed payload into out, a pointer to a Go value
// with msgpack tags.
func (d *Decoder) DecodeInto(ctx context.Context, payload []byte, out any) error {
	r, body, err := d.frame(ctx, payload)
	if err != nil {
		return err
	}
	return r.DecodeInto(body, out)
}
