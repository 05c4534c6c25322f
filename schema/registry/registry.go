// Package registry is Raptor's schema registry: subjects, versions, global
// schema IDs, soft and hard deletes, compatibility levels and modes (global
// and per subject), schema references, with the semantics of the Confluent
// Schema Registry. State is the fold of a log of records in Confluent's
// "_schemas" format kept by a Store: the local FileStore, or a compacted
// Kafka topic (schema/kafkastore) shared by several instances, Raptor's or
// Confluent's. The HTTP API is in schema/httpapi.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/raptormq/raptor/schema"
)

// Config configures a Registry. The zero value is valid apart from Store.
type Config struct {
	// Store keeps the records. Required.
	Store Store
	// Logger receives operational logs. Default: discard.
	Logger *slog.Logger
}

// Mode is a registry mode, global or per subject (Confluent's names).
type Mode string

// The modes. READWRITE is the default; READONLY refuses registrations and
// deletes; IMPORT accepts registrations only with an explicit ID (and
// optionally version), without compatibility checks, to copy a registry.
const (
	ReadWrite Mode = "READWRITE"
	ReadOnly  Mode = "READONLY"
	Import    Mode = "IMPORT"
)

// ParseMode parses a mode name, ignoring case.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToUpper(s)); m {
	case ReadWrite, ReadOnly, Import:
		return m, nil
	}
	return "", &Error{Code: CodeInvalidMode, Message: fmt.Sprintf("Invalid mode %q. Valid values are READWRITE, READONLY and IMPORT", s)}
}

// maxRefDepth bounds chains of references, so a crafted store cannot make a
// schema's resolution recurse without end.
const maxRefDepth = 32

// Registry serves subjects, versions and schema IDs from the records of its
// store. It is safe for concurrent use; writes are serialised.
type Registry struct {
	store Store
	log   *slog.Logger

	writeMu sync.Mutex // serialises read-check-write sequences

	mu       sync.RWMutex
	subjects map[string]map[int]*SchemaValue // subject -> version -> value (Schema filled)
	ids      map[int]*idEntry
	byIdent  map[string]int // identKey -> id
	legacy   map[int]string // legacy ID records: id -> text
	maxID    int
	global   schema.Level            // "" = DefaultLevel
	levels   map[string]schema.Level // per subject
	gmode    Mode                    // "" = READWRITE
	modes    map[string]Mode         // per subject
	badRecs  int

	parseMu sync.Mutex
	parsed  map[int]parsed // parsed schemas by ID, filled on first use
}

// idEntry is one global schema ID. IDs outlive the versions that use them
// for the life of the process (as in Confluent's registry), so payloads
// written with a hard-deleted schema still decode until a restart.
type idEntry struct {
	text  string
	typ   string
	refs  []Reference
	ident string
}

// SubjectVersion is one version of a subject with its schema.
type SubjectVersion struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType,omitempty"` // "" is AVRO, as Confluent answers
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
	Deleted    bool        `json:"-"`
}

// Request is a schema submitted to Register, Lookup or Check.
type Request struct {
	// Type is AVRO (also ""), JSON or PROTOBUF.
	Type string
	// Text is the schema text.
	Text string
	// References name the registered schemas Text uses.
	References []Reference
	// ID and Version, when positive, are imposed on a registration; only in
	// IMPORT mode.
	ID, Version int
	// Normalize stores and compares the normalised form of Text instead of
	// the text as given (?normalize=true).
	Normalize bool
}

// Open builds a registry by replaying cfg.Store.
func Open(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.Store == nil {
		return nil, &Error{Code: CodeStoreError, Message: "no store configured"}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{
		store:    cfg.Store,
		log:      log,
		subjects: map[string]map[int]*SchemaValue{},
		ids:      map[int]*idEntry{},
		byIdent:  map[string]int{},
		legacy:   map[int]string{},
		levels:   map[string]schema.Level{},
		modes:    map[string]Mode{},
		parsed:   map[int]parsed{},
	}
	if err := cfg.Store.Start(ctx, r.apply); err != nil {
		return nil, errStore(err)
	}
	return r, nil
}

// Close closes the store.
func (r *Registry) Close() error { return r.store.Close() }

// Sync waits until every record stored so far, by any instance sharing the
// store, is visible in this registry.
func (r *Registry) Sync(ctx context.Context) error {
	if err := r.store.Sync(ctx); err != nil {
		return errStore(err)
	}
	return nil
}

// MalformedRecords returns how many stored records were skipped as malformed.
func (r *Registry) MalformedRecords() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.badRecs
}

func identKey(typ, ident string, refs []Reference) string {
	if len(refs) == 0 {
		return typ + "\x00" + ident + "\x00"
	}
	return typ + "\x00" + ident + "\x00" + string(mustJSON(refs))
}

// apply folds one record into the state. Malformed records are counted and
// skipped: one bad record must not make the registry unusable.
func (r *Registry) apply(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := rec.Key
	switch k.Type {
	case KeyID:
		if rec.Value == nil {
			return // IDs were never deleted; ignore a stray tombstone
		}
		var v legacyIDValue
		if err := json.Unmarshal(rec.Value, &v); err != nil || v.ID <= 0 || v.Schema == "" {
			r.bad("id", k, err)
			return
		}
		typ, _, err := typeOf(v.SchemaType)
		if err != nil {
			r.bad("id", k, err)
			return
		}
		r.legacy[v.ID] = v.Schema
		if _, err := r.addIDLocked(v.ID, typ, v.Schema, v.References); err != nil {
			r.bad("id", k, err)
		}
	case KeySchema:
		vs := r.subjects[k.Subject]
		if rec.Value == nil {
			delete(vs, k.Version)
			if len(vs) == 0 {
				delete(r.subjects, k.Subject)
			}
			return
		}
		var v SchemaValue
		if err := json.Unmarshal(rec.Value, &v); err != nil || v.ID <= 0 {
			r.bad("schema", k, err)
			return
		}
		v.Subject, v.Version = k.Subject, k.Version
		if len(v.References) == 0 {
			v.References = nil // Confluent writes [], Raptor omits them
		}
		if v.Schema == "" {
			v.Schema = r.legacy[v.ID]
		}
		typ, _, err := typeOf(v.SchemaType)
		if err != nil {
			r.bad("schema", k, err)
			return
		}
		e, err := r.addIDLocked(v.ID, typ, v.Schema, v.References)
		if err != nil {
			r.bad("schema", k, err)
			return
		}
		v.Schema, v.SchemaType = e.text, e.typ
		if vs == nil {
			vs = map[int]*SchemaValue{}
			r.subjects[k.Subject] = vs
		}
		vs[k.Version] = &v
	case KeyDeleteSubject:
		if rec.Value == nil {
			return
		}
		var v DeleteSubjectValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			r.bad("delete_subject", k, err)
			return
		}
		for n, sv := range r.subjects[k.Subject] {
			if n <= v.Version && !sv.Deleted {
				c := *sv
				c.Deleted = true
				r.subjects[k.Subject][n] = &c
			}
		}
	case KeyConfig:
		if rec.Value == nil {
			if k.Subject == "" {
				r.global = ""
			} else {
				delete(r.levels, k.Subject)
			}
			return
		}
		var v ConfigValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			r.bad("config", k, err)
			return
		}
		l, err := schema.ParseLevel(v.CompatibilityLevel)
		if err != nil {
			r.bad("config", k, err)
			return
		}
		if k.Subject == "" {
			r.global = l
		} else {
			r.levels[k.Subject] = l
		}
	case KeyMode:
		if rec.Value == nil {
			if k.Subject == "" {
				r.gmode = ""
			} else {
				delete(r.modes, k.Subject)
			}
			return
		}
		var v ModeValue
		if err := json.Unmarshal(rec.Value, &v); err != nil {
			r.bad("mode", k, err)
			return
		}
		m, err := ParseMode(v.Mode)
		if err != nil {
			r.bad("mode", k, err)
			return
		}
		if k.Subject == "" {
			r.gmode = m
		} else {
			r.modes[k.Subject] = m
		}
	case KeyNoop, KeyClearSubject, KeyContext:
		// Nothing to fold: NOOP only marks an offset, CLEAR_SUBJECT follows
		// the tombstones that did the work, and only the default context is
		// served.
	}
}

// addIDLocked records a global ID, or checks that an ID already known has
// the same schema. The caller holds mu for writing.
func (r *Registry) addIDLocked(id int, typ, text string, refs []Reference) (*idEntry, error) {
	if text == "" {
		return nil, fmt.Errorf("schema %d has no text", id)
	}
	if e, ok := r.ids[id]; ok {
		if e.typ != typ || e.text != text && e.ident != identOrText(typ, text) || !slices.Equal(e.refs, refs) {
			return nil, fmt.Errorf("schema id %d already holds a different %s schema", id, e.typ)
		}
		return e, nil
	}
	ident, err := schemaTypes[typ].identity(text)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", id, err)
	}
	e := &idEntry{text: text, typ: typ, refs: refs, ident: ident}
	r.ids[id] = e
	key := identKey(typ, ident, refs)
	if _, ok := r.byIdent[key]; !ok {
		r.byIdent[key] = id
	}
	r.maxID = max(r.maxID, id)
	return e, nil
}

func identOrText(typ, text string) string {
	if id, err := schemaTypes[typ].identity(text); err == nil {
		return id
	}
	return text
}

func (r *Registry) bad(what string, k Key, err error) {
	r.badRecs++
	r.log.Warn("schema registry: skipping malformed record", "kind", what, "key", string(k.Bytes()), "error", err)
}

func (r *Registry) write(ctx context.Context, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := r.store.Write(ctx, recs); err != nil {
		return errStore(err)
	}
	return nil
}

// sortedVersions returns the versions of subject (live only unless deleted),
// ascending. The caller holds mu.
func (r *Registry) sortedVersions(subject string, deleted bool) []*SchemaValue {
	var out []*SchemaValue
	for _, v := range r.subjects[subject] {
		if deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *SchemaValue) int { return a.Version - b.Version })
	return out
}

func subjectVersion(v *SchemaValue) SubjectVersion {
	typ := v.SchemaType
	if typ == TypeAvro {
		typ = ""
	}
	return SubjectVersion{Subject: v.Subject, Version: v.Version, ID: v.ID, SchemaType: typ, References: v.References, Schema: v.Schema, Deleted: v.Deleted}
}

// parsedLocked returns the parsed schema of id, parsing it (and its
// references) on first use. The caller holds mu.
func (r *Registry) parsedLocked(id int) (parsed, error) {
	r.parseMu.Lock()
	defer r.parseMu.Unlock()
	return r.parseIDLocked(id, 0)
}

func (r *Registry) parseIDLocked(id, depth int) (parsed, error) {
	if p, ok := r.parsed[id]; ok {
		return p, nil
	}
	e, ok := r.ids[id]
	if !ok {
		return nil, errSchemaNotFound("schema " + strconv.Itoa(id) + " not found")
	}
	refs, err := r.refTextsLocked(e.refs, false, depth, map[string]bool{})
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", id, err)
	}
	p, err := schemaTypes[e.typ].parse(e.text, refs)
	if err != nil {
		return nil, fmt.Errorf("stored schema %d does not parse: %w", id, err)
	}
	r.parsed[id] = p
	return p, nil
}

// refTextsLocked resolves refs to their texts, deepest first, each name
// once. With liveOnly, a soft-deleted version does not count. The caller
// holds mu and parseMu.
func (r *Registry) refTextsLocked(refs []Reference, liveOnly bool, depth int, seen map[string]bool) ([]refText, error) {
	if depth > maxRefDepth {
		return nil, fmt.Errorf("references nested deeper than %d", maxRefDepth)
	}
	var out []refText
	for _, ref := range refs {
		if seen[ref.Name] {
			continue
		}
		seen[ref.Name] = true
		v, err := r.findLocked(ref.Subject, ref.Version, !liveOnly)
		if err != nil {
			return nil, fmt.Errorf("reference %q to subject %q version %d: %w", ref.Name, ref.Subject, ref.Version, err)
		}
		e := r.ids[v.ID]
		inner, err := r.refTextsLocked(e.refs, false, depth+1, seen)
		if err != nil {
			return nil, err
		}
		out = append(out, inner...)
		out = append(out, refText{name: ref.Name, text: e.text})
	}
	return out, nil
}

// prepared is a checked Request: its canonical type, the text to store, its
// identity key and parsed form.
type prepared struct {
	typ    string
	text   string
	refs   []Reference
	key    string
	parsed parsed
}

// prepareLocked parses req with its references (which must be live). The
// caller holds mu.
func (r *Registry) prepareLocked(req Request) (prepared, error) {
	typ, t, err := typeOf(req.Type)
	if err != nil {
		return prepared{}, err
	}
	if len(req.Text) > schema.MaxSchemaSize {
		return prepared{}, &Error{Code: CodeInvalidSchema, Message: fmt.Sprintf("Invalid schema: %d bytes, limit is %d", len(req.Text), schema.MaxSchemaSize)}
	}
	refs := slices.Clone(req.References)
	for i, ref := range refs {
		if ref.Name == "" || ref.Subject == "" {
			return prepared{}, &Error{Code: CodeInvalidSchema, Message: fmt.Sprintf("Invalid schema: reference %d needs a name and a subject", i)}
		}
		v, err := r.findLocked(ref.Subject, ref.Version, false)
		if err != nil {
			return prepared{}, &Error{Code: CodeInvalidSchema, Message: fmt.Sprintf("Invalid schema: reference %q to subject %q version %d: %s", ref.Name, ref.Subject, ref.Version, msgOf(err)), Err: err}
		}
		refs[i].Version = v.Version // "latest" (-1) stored as the version it meant
	}
	r.parseMu.Lock()
	texts, err := r.refTextsLocked(refs, true, 0, map[string]bool{})
	r.parseMu.Unlock()
	if err != nil {
		return prepared{}, &Error{Code: CodeInvalidSchema, Message: "Invalid schema: " + err.Error(), Err: err}
	}
	p, err := t.parse(req.Text, texts)
	if err != nil {
		return prepared{}, errInvalidSchema(err)
	}
	text := req.Text
	if req.Normalize {
		if text, err = t.normalize(req.Text); err != nil {
			return prepared{}, errInvalidSchema(err)
		}
	}
	ident, err := t.identity(text)
	if err != nil {
		return prepared{}, errInvalidSchema(err)
	}
	if len(refs) == 0 {
		refs = nil
	}
	return prepared{typ: typ, text: text, refs: refs, key: identKey(typ, ident, refs), parsed: p}, nil
}

func msgOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// modeLocked returns the mode in force for subject ("" for global). The
// caller holds mu.
func (r *Registry) modeLocked(subject string) Mode {
	if m, ok := r.modes[subject]; ok && subject != "" {
		return m
	}
	if r.gmode != "" {
		return r.gmode
	}
	return ReadWrite
}

// Register adds text as a new version of subject; see RegisterSchema.
func (r *Registry) Register(ctx context.Context, subject, schemaType, text string) (SubjectVersion, error) {
	return r.RegisterSchema(ctx, subject, Request{Type: schemaType, Text: text})
}

// RegisterSchema adds req as a new version of subject, unless the subject
// already has a live version with the same schema, which is then returned.
// The candidate must satisfy the subject's compatibility level against the
// live versions (409 otherwise), except in IMPORT mode, where req.ID is
// required and kept. The same schema under any subject keeps one ID.
func (r *Registry) RegisterSchema(ctx context.Context, subject string, req Request) (SubjectVersion, error) {
	if subject == "" {
		return SubjectVersion{}, &Error{Code: CodeInvalidSubject, Message: "Invalid subject: the subject name is empty"}
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()

	r.mu.RLock()
	mode := r.modeLocked(subject)
	switch {
	case mode == ReadOnly:
		r.mu.RUnlock()
		return SubjectVersion{}, errReadOnly(subject)
	case mode == Import && req.ID <= 0:
		r.mu.RUnlock()
		return SubjectVersion{}, &Error{Code: CodeOperationNotPermitted, Message: "Subject '" + subject + "' is in IMPORT mode: a registration needs an explicit id"}
	case mode != Import && (req.ID > 0 || req.Version > 0):
		r.mu.RUnlock()
		return SubjectVersion{}, &Error{Code: CodeOperationNotPermitted, Message: fmt.Sprintf("Subject '%s' is not in IMPORT mode: cannot register with an explicit id (%d) or version (%d)", subject, req.ID, req.Version)}
	}
	p, err := r.prepareLocked(req)
	if err != nil {
		r.mu.RUnlock()
		return SubjectVersion{}, err
	}
	live := r.sortedVersions(subject, false)
	for _, v := range live {
		if r.byIdentOf(v.ID) == p.key {
			r.mu.RUnlock()
			if mode == Import && req.ID != v.ID {
				return SubjectVersion{}, &Error{Code: CodeIDDoesNotMatch, Message: fmt.Sprintf("Schema already registered with id %d instead of input id %d", v.ID, req.ID)}
			}
			return subjectVersion(v), nil
		}
	}
	id, known := r.byIdent[p.key]
	if mode == Import {
		if e, ok := r.ids[req.ID]; ok && identKey(e.typ, e.ident, e.refs) != p.key {
			r.mu.RUnlock()
			return SubjectVersion{}, &Error{Code: CodeOperationNotPermitted, Message: fmt.Sprintf("Overwrite new schema with id %d is not permitted: it holds another schema", req.ID)}
		}
		id = req.ID
	} else if !known {
		id = r.maxID + 1
	}
	if e, ok := r.ids[id]; ok {
		p.text = e.text // one text per ID
	}
	version := 1
	for v := range r.subjects[subject] {
		version = max(version, v+1)
	}
	if mode == Import && req.Version > 0 {
		if _, taken := r.subjects[subject][req.Version]; taken {
			r.mu.RUnlock()
			return SubjectVersion{}, &Error{Code: CodeOperationNotPermitted, Message: fmt.Sprintf("Version %d of subject '%s' already holds another schema", req.Version, subject)}
		}
		version = req.Version
	}
	var cerr error
	if mode != Import {
		cerr = r.checkLocked(r.levelLocked(subject), p, live)
	}
	r.mu.RUnlock()
	if cerr != nil {
		return SubjectVersion{}, errIncompatible(subject, cerr)
	}
	v := SchemaValue{Subject: subject, Version: version, ID: id, References: p.refs, Schema: p.text}
	if p.typ != TypeAvro {
		v.SchemaType = p.typ
	}
	if err := r.write(ctx, Record{Key: Key{Type: KeySchema, Subject: subject, Version: version}, Value: mustJSON(v)}); err != nil {
		return SubjectVersion{}, err
	}
	r.log.Info("schema registered", "subject", subject, "version", version, "id", id, "type", p.typ)
	return subjectVersion(&v), nil
}

// byIdentOf returns the identity key of a known ID. The caller holds mu.
func (r *Registry) byIdentOf(id int) string {
	e := r.ids[id]
	return identKey(e.typ, e.ident, e.refs)
}

// checkLocked checks p against versions under level. The caller holds mu.
func (r *Registry) checkLocked(level schema.Level, p prepared, versions []*SchemaValue) error {
	var existing []schema.VersionedOf[parsed]
	for _, v := range versions {
		if r.ids[v.ID].typ != p.typ {
			return &schema.IncompatibleError{Level: level, Messages: []string{fmt.Sprintf("version %d is a %s schema, the new one is %s", v.Version, r.ids[v.ID].typ, p.typ)}}
		}
		old, err := r.parsedLocked(v.ID)
		if err != nil {
			return err
		}
		existing = append(existing, schema.VersionedOf[parsed]{Version: v.Version, Schema: old})
	}
	return schema.CheckLevel(level, p.parsed, existing, func(reader, writer parsed) error { return reader.canRead(writer) })
}

// Subjects returns the subjects with at least one live version (or any
// version, with deleted), sorted.
func (r *Registry) Subjects(deleted bool) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	for s := range r.subjects {
		if len(r.sortedVersions(s, deleted)) > 0 {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Versions returns the version numbers of subject, ascending.
func (r *Registry) Versions(subject string, deleted bool) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.sortedVersions(subject, deleted)
	if len(vs) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out, nil
}

// ParseVersion parses a version path element: a positive 32-bit integer or
// "latest" (returned as -1).
func ParseVersion(text string) (int, error) {
	if text == "latest" || text == "-1" {
		return latestVersion, nil
	}
	v, err := strconv.Atoi(text)
	if err != nil || v < 1 || v > maxVersion {
		return 0, ErrInvalidVersion(text)
	}
	return v, nil
}

// Version returns one version of subject; version -1 is the latest.
// Soft-deleted versions are returned only with deleted.
func (r *Registry) Version(subject string, version int, deleted bool) (SubjectVersion, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, err := r.findLocked(subject, version, deleted)
	if err != nil {
		return SubjectVersion{}, err
	}
	return subjectVersion(v), nil
}

func (r *Registry) findLocked(subject string, version int, deleted bool) (*SchemaValue, error) {
	vs := r.sortedVersions(subject, deleted)
	if len(vs) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	if version == latestVersion {
		return vs[len(vs)-1], nil
	}
	for _, v := range vs {
		if v.Version == version {
			return v, nil
		}
	}
	return nil, errVersionNotFound(subject, version)
}

// Lookup finds the version of subject holding text; see LookupSchema.
func (r *Registry) Lookup(subject, schemaType, text string, deleted bool) (SubjectVersion, error) {
	return r.LookupSchema(subject, Request{Type: schemaType, Text: text}, deleted)
}

// LookupSchema finds the latest version of subject holding req's schema
// (with its references).
func (r *Registry) LookupSchema(subject string, req Request, deleted bool) (SubjectVersion, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.sortedVersions(subject, deleted)
	if len(vs) == 0 {
		return SubjectVersion{}, errSubjectNotFound(subject)
	}
	p, err := r.prepareLocked(req)
	if err != nil {
		return SubjectVersion{}, err
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if r.byIdentOf(vs[i].ID) == p.key {
			return subjectVersion(vs[i]), nil
		}
	}
	return SubjectVersion{}, errSchemaNotFound("no version of subject '" + subject + "' has this schema")
}

// referrersLocked returns the versions (live only unless deleted) whose
// schema references subject at version. The caller holds mu.
func (r *Registry) referrersLocked(subject string, version int, deleted bool) []*SchemaValue {
	var out []*SchemaValue
	for _, s := range slices.Sorted(maps.Keys(r.subjects)) {
		for _, v := range r.sortedVersions(s, deleted) {
			for _, ref := range v.References {
				if ref.Subject == subject && ref.Version == version {
					out = append(out, v)
					break
				}
			}
		}
	}
	return out
}

// ReferencedBy returns the IDs of the live schemas that reference subject
// at version (-1: the latest), ascending.
func (r *Registry) ReferencedBy(subject string, version int) ([]int, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, err := r.findLocked(subject, version, false)
	if err != nil {
		return nil, err
	}
	out := []int{}
	for _, ref := range r.referrersLocked(subject, v.Version, false) {
		if !slices.Contains(out, ref.ID) {
			out = append(out, ref.ID)
		}
	}
	slices.Sort(out)
	return out, nil
}

func errReferenced(subject string, version int, by *SchemaValue) error {
	return &Error{Code: CodeReferenceExists, Message: fmt.Sprintf("One or more references exist to the schema {subject=%s,version=%d}: subject '%s' version %d (id %d)", subject, version, by.Subject, by.Version, by.ID)}
}

// dropSubjectSettingsLocked returns the tombstones of subject's level and
// mode, those it has. The caller holds mu.
func (r *Registry) dropSubjectSettingsLocked(subject string) []Record {
	var recs []Record
	if _, ok := r.levels[subject]; ok {
		recs = append(recs, Record{Key: Key{Type: KeyConfig, Subject: subject}})
	}
	if _, ok := r.modes[subject]; ok {
		recs = append(recs, Record{Key: Key{Type: KeyMode, Subject: subject}})
	}
	return recs
}

// DeleteVersion deletes one version of subject (-1: the latest). A permanent
// (hard) delete needs an earlier soft delete. A version referenced by another
// schema is not deleted (42206). A soft delete of the last live version also
// drops the subject's compatibility level and mode, as a subject delete does.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	all := r.sortedVersions(subject, true)
	live := r.sortedVersions(subject, false)
	mode := r.modeLocked(subject)
	var target *SchemaValue
	if len(all) > 0 {
		if version == latestVersion {
			cands := all
			if !permanent {
				cands = live
			}
			if len(cands) > 0 {
				target = cands[len(cands)-1]
			}
		} else {
			for _, v := range all {
				if v.Version == version {
					target = v
				}
			}
		}
	}
	var refs []*SchemaValue
	var settings []Record
	if target != nil {
		refs = r.referrersLocked(subject, target.Version, permanent)
		if !permanent && !target.Deleted && len(live) == 1 {
			settings = r.dropSubjectSettingsLocked(subject)
		}
	}
	r.mu.RUnlock()
	switch {
	case len(all) == 0:
		return 0, errSubjectNotFound(subject)
	case target == nil:
		return 0, errVersionNotFound(subject, version)
	case mode == ReadOnly:
		return 0, errReadOnly(subject)
	case len(refs) > 0:
		return 0, errReferenced(subject, target.Version, refs[0])
	}
	key := Key{Type: KeySchema, Subject: subject, Version: target.Version}
	switch {
	case permanent && !target.Deleted:
		return 0, &Error{Code: CodeSchemaVersionNotSoftDeleted, Message: "Subject '" + subject + "' Version " + strconv.Itoa(target.Version) + " was not deleted first before being permanently deleted"}
	case permanent:
		return target.Version, r.write(ctx, Record{Key: key})
	case target.Deleted:
		return 0, &Error{Code: CodeSchemaVersionSoftDeleted, Message: "Subject '" + subject + "' Version " + strconv.Itoa(target.Version) + " was soft deleted. Set permanent=true to delete permanently"}
	}
	nv := *target
	nv.Deleted = true
	if nv.SchemaType == TypeAvro {
		nv.SchemaType = ""
	}
	return target.Version, r.write(ctx, append([]Record{{Key: key, Value: mustJSON(nv)}}, settings...)...)
}

// DeleteSubject deletes every version of subject and returns their numbers.
// A soft delete also drops the subject's compatibility level and mode (as
// Confluent's does); a permanent delete needs an earlier soft delete. A
// subject with a version referenced by another schema is not deleted (42206).
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	all := r.sortedVersions(subject, true)
	live := r.sortedVersions(subject, false)
	mode := r.modeLocked(subject)
	settings := r.dropSubjectSettingsLocked(subject)
	var referrer *SchemaValue
	var refVersion int
	for _, v := range all {
		for _, by := range r.referrersLocked(subject, v.Version, permanent) {
			if by.Subject != subject && referrer == nil {
				referrer, refVersion = by, v.Version
			}
		}
	}
	r.mu.RUnlock()
	switch {
	case len(all) == 0:
		return nil, errSubjectNotFound(subject)
	case mode == ReadOnly:
		return nil, errReadOnly(subject)
	case referrer != nil:
		return nil, errReferenced(subject, refVersion, referrer)
	}
	var recs []Record
	var versions []int
	switch {
	case permanent && len(live) > 0:
		return nil, &Error{Code: CodeSubjectNotSoftDeleted, Message: "Subject '" + subject + "' was not deleted first before being permanently deleted"}
	case permanent:
		for _, v := range all {
			recs = append(recs, Record{Key: Key{Type: KeySchema, Subject: subject, Version: v.Version}})
			versions = append(versions, v.Version)
		}
	case len(live) == 0:
		return nil, &Error{Code: CodeSubjectSoftDeleted, Message: "Subject '" + subject + "' was soft deleted. Set permanent=true to delete permanently"}
	default:
		for _, v := range live {
			nv := *v
			nv.Deleted = true
			if nv.SchemaType == TypeAvro {
				nv.SchemaType = ""
			}
			recs = append(recs, Record{Key: Key{Type: KeySchema, Subject: subject, Version: v.Version}, Value: mustJSON(nv)})
			versions = append(versions, v.Version)
		}
	}
	recs = append(recs, settings...) // a level or mode left by older records goes with a hard delete too
	if err := r.write(ctx, recs...); err != nil {
		return nil, err
	}
	return versions, nil
}

// IDSchema is the schema of a global ID.
type IDSchema struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"` // "" is AVRO
	References []Reference `json:"references,omitempty"`
}

// SchemaInfoByID returns the schema of a global ID as registered.
func (r *Registry) SchemaInfoByID(id int) (IDSchema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.ids[id]
	if !ok {
		return IDSchema{}, errSchemaNotFound("schema " + strconv.Itoa(id) + " not found")
	}
	out := IDSchema{Schema: e.text, SchemaType: e.typ, References: e.refs}
	if e.typ == TypeAvro {
		out.SchemaType = ""
	}
	return out, nil
}

// SchemaByID returns the schema text of a global ID as registered.
func (r *Registry) SchemaByID(id int) (string, error) {
	s, err := r.SchemaInfoByID(id)
	return s.Schema, err
}

// ParsedByID returns the parsed Avro schema of a global ID (with its
// references resolved).
func (r *Registry) ParsedByID(id int) (*schema.Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, err := r.parsedLocked(id)
	if err != nil {
		return nil, err
	}
	a, ok := p.(avroParsed)
	if !ok {
		return nil, fmt.Errorf("registry: schema %d is %s, not AVRO", id, r.ids[id].typ)
	}
	return a.s, nil
}

// VersionsByID returns the subject versions using a global ID, sorted by
// subject then version.
func (r *Registry) VersionsByID(id int, deleted bool) ([]SubjectVersion, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if _, ok := r.ids[id]; !ok {
		return nil, errSchemaNotFound("schema " + strconv.Itoa(id) + " not found")
	}
	out := []SubjectVersion{}
	for _, s := range slices.Sorted(maps.Keys(r.subjects)) {
		for _, v := range r.sortedVersions(s, deleted) {
			if v.ID == id {
				out = append(out, subjectVersion(v))
			}
		}
	}
	return out, nil
}

func (r *Registry) levelLocked(subject string) schema.Level {
	if l, ok := r.levels[subject]; ok && subject != "" {
		return l
	}
	if r.global != "" {
		return r.global
	}
	return schema.DefaultLevel
}

// Level returns the compatibility level of subject ("" for the global
// level). For a subject without its own level, configured is false and the
// global level is returned.
func (r *Registry) Level(subject string) (level schema.Level, configured bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, configured = r.levels[subject]
	if subject == "" {
		configured = true
	}
	return r.levelLocked(subject), configured
}

// SetLevel sets the compatibility level of subject ("" for global).
func (r *Registry) SetLevel(ctx context.Context, subject string, level schema.Level) error {
	if _, err := schema.ParseLevel(string(level)); err != nil {
		return ErrInvalidLevel(err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return r.write(ctx, Record{Key: Key{Type: KeyConfig, Subject: subject}, Value: mustJSON(ConfigValue{CompatibilityLevel: string(level)})})
}

// DeleteLevel removes the level of subject ("" resets the global level to
// the default) and returns the level in force before.
func (r *Registry) DeleteLevel(ctx context.Context, subject string) (schema.Level, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	prev := r.levelLocked(subject)
	_, has := r.levels[subject]
	_, exists := r.subjects[subject]
	r.mu.RUnlock()
	if subject != "" && !has {
		if !exists {
			return "", errSubjectNotFound(subject)
		}
		return "", &Error{Code: CodeSubjectLevelCompatNotConfigured, Message: "Subject '" + subject + "' does not have subject-level compatibility configured"}
	}
	return prev, r.write(ctx, Record{Key: Key{Type: KeyConfig, Subject: subject}})
}

// ModeOf returns the mode of subject ("" for the global mode). For a
// subject without its own mode, configured is false and the global mode is
// returned.
func (r *Registry) ModeOf(subject string) (mode Mode, configured bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, configured = r.modes[subject]
	if subject == "" {
		configured = true
	}
	return r.modeLocked(subject), configured
}

// SetMode sets the mode of subject ("" for global). IMPORT on a registry
// (or subject) that already holds schemas needs force, as in Confluent's.
func (r *Registry) SetMode(ctx context.Context, subject string, mode Mode, force bool) error {
	if _, err := ParseMode(string(mode)); err != nil {
		return err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if mode == Import && !force {
		r.mu.RLock()
		nonEmpty := len(r.subjects) > 0
		if subject != "" {
			nonEmpty = len(r.subjects[subject]) > 0
		}
		r.mu.RUnlock()
		if nonEmpty {
			return &Error{Code: CodeOperationNotPermitted, Message: "Cannot import since found existing subjects (set force=true to import anyway)"}
		}
	}
	return r.write(ctx, Record{Key: Key{Type: KeyMode, Subject: subject}, Value: mustJSON(ModeValue{Mode: string(mode)})})
}

// DeleteMode removes the mode of subject ("" resets the global mode to
// READWRITE) and returns the mode in force before.
func (r *Registry) DeleteMode(ctx context.Context, subject string) (Mode, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	prev := r.modeLocked(subject)
	_, has := r.modes[subject]
	_, exists := r.subjects[subject]
	r.mu.RUnlock()
	if subject != "" && !has {
		if !exists {
			return "", errSubjectNotFound(subject)
		}
		return "", errModeNotConfigured(subject)
	}
	return prev, r.write(ctx, Record{Key: Key{Type: KeyMode, Subject: subject}})
}

// CheckCompatibility checks text against subject; see Check.
func (r *Registry) CheckCompatibility(subject string, version int, schemaType, text string) (bool, []string, error) {
	return r.Check(subject, version, Request{Type: schemaType, Text: text})
}

// Check checks req against subject: against one version (under the
// direction of the subject's level), or with version -1 against the latest
// (all live versions for a transitive level), or with version 0 against all
// live versions. It returns whether the schema is compatible and the reasons
// when it is not.
func (r *Registry) Check(subject string, version int, req Request) (bool, []string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	p, err := r.prepareLocked(req)
	if err != nil {
		return false, nil, err
	}
	level := r.levelLocked(subject)
	live := r.sortedVersions(subject, false)
	var against []*SchemaValue
	switch version {
	case 0, latestVersion:
		against = live
		if len(live) == 0 && version == latestVersion {
			return false, nil, errSubjectNotFound(subject)
		}
	default:
		v, err := r.findLocked(subject, version, false)
		if err != nil {
			return false, nil, err
		}
		against = []*SchemaValue{v}
	}
	if version == 0 && !level.Transitive() && level != schema.None {
		level = transitiveOf(level)
	}
	if err := r.checkLocked(level, p, against); err != nil {
		var ie *schema.IncompatibleError
		if errors.As(err, &ie) {
			return false, ie.Messages, nil
		}
		return false, []string{err.Error()}, nil
	}
	return true, []string{}, nil
}

func transitiveOf(l schema.Level) schema.Level {
	switch l {
	case schema.Backward:
		return schema.BackwardTransitive
	case schema.Forward:
		return schema.ForwardTransitive
	case schema.Full:
		return schema.FullTransitive
	}
	return l
}
