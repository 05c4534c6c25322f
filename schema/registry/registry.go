// Package registry is Raptor's schema registry: subjects, versions, global
// schema IDs, soft and hard deletes, and compatibility levels (global and per
// subject) enforced on register, with the semantics of the Confluent Schema
// Registry. State is the fold of a log of records kept by a Store: the local
// FileStore, or a compacted Kafka topic (schema/kafkastore) shared by several
// instances. The HTTP API is in schema/httpapi.
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
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

// Registry serves subjects, versions and schema IDs from the records of its
// store. It is safe for concurrent use; writes are serialised.
type Registry struct {
	store Store
	log   *slog.Logger

	writeMu sync.Mutex // serialises read-check-write sequences

	mu       sync.RWMutex
	subjects map[string]map[int]*VersionValue // subject -> version -> value
	ids      map[int]*idEntry
	byText   map[string]int
	maxID    int
	global   schema.Level            // "" = DefaultLevel
	levels   map[string]schema.Level // per subject
	badRecs  int
}

type idEntry struct {
	text   string
	schema *schema.Schema
}

// SubjectVersion is one version of a subject with its schema.
type SubjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
	Deleted bool   `json:"-"`
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
		subjects: map[string]map[int]*VersionValue{},
		ids:      map[int]*idEntry{},
		byText:   map[string]int{},
		levels:   map[string]schema.Level{},
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

// apply folds one record into the state. Malformed records are counted and
// skipped: one bad record must not make the registry unusable.
func (r *Registry) apply(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := rec.Key
	switch k.Type {
	case KeyID:
		if rec.Value == nil {
			return // IDs are never deleted; ignore a stray tombstone
		}
		var v IDValue
		if err := json.Unmarshal(rec.Value, &v); err != nil || v.ID <= 0 {
			r.bad("id", k, err)
			return
		}
		s, err := schema.Parse(v.Schema)
		if err != nil {
			r.bad("id", k, err)
			return
		}
		r.ids[v.ID] = &idEntry{text: s.String(), schema: s}
		r.byText[s.String()] = v.ID
		r.maxID = max(r.maxID, v.ID)
	case KeySchema:
		vs := r.subjects[k.Subject]
		if rec.Value == nil {
			delete(vs, k.Version)
			if len(vs) == 0 {
				delete(r.subjects, k.Subject)
			}
			return
		}
		var v VersionValue
		if err := json.Unmarshal(rec.Value, &v); err != nil || v.Version <= 0 || v.ID <= 0 {
			r.bad("schema", k, err)
			return
		}
		if vs == nil {
			vs = map[int]*VersionValue{}
			r.subjects[k.Subject] = vs
		}
		vs[k.Version] = &v
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
	}
}

func (r *Registry) bad(what string, k Key, err error) {
	r.badRecs++
	r.log.Warn("schema registry: skipping malformed record", "kind", what, "key", string(k.Bytes()), "error", err)
}

func (r *Registry) write(ctx context.Context, recs ...Record) error {
	if err := r.store.Write(ctx, recs); err != nil {
		return errStore(err)
	}
	return nil
}

// sortedVersions returns the versions of subject (live only unless deleted),
// ascending. The caller holds mu.
func (r *Registry) sortedVersions(subject string, deleted bool) []*VersionValue {
	var out []*VersionValue
	for _, v := range r.subjects[subject] {
		if r.ids[v.ID] == nil {
			continue // its ID record was malformed and skipped: nothing to serve
		}
		if deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *VersionValue) int { return a.Version - b.Version })
	return out
}

func (r *Registry) subjectVersion(v *VersionValue) SubjectVersion {
	return SubjectVersion{Subject: v.Subject, Version: v.Version, ID: v.ID, Schema: r.ids[v.ID].text, Deleted: v.Deleted}
}

// parse parses a schema submitted by a client; only Avro is supported.
func parse(schemaType, text string) (*schema.Schema, error) {
	if schemaType != "" && schemaType != "AVRO" {
		return nil, &Error{Code: CodeInvalidSchema, Message: "Invalid schema: unsupported schema type " + strconv.Quote(schemaType) + ", this registry serves AVRO only"}
	}
	s, err := schema.Parse(text)
	if err != nil {
		return nil, errInvalidSchema(err)
	}
	return s, nil
}

// Register adds text as a new version of subject, unless the subject already
// has a live version with the same schema, whose ID is then returned. The
// candidate must satisfy the subject's compatibility level against the live
// versions (409 otherwise). The same schema under any subject keeps one ID.
func (r *Registry) Register(ctx context.Context, subject, schemaType, text string) (SubjectVersion, error) {
	s, err := parse(schemaType, text)
	if err != nil {
		return SubjectVersion{}, err
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()

	r.mu.RLock()
	norm := s.String()
	live := r.sortedVersions(subject, false)
	for _, v := range live {
		if r.ids[v.ID].text == norm {
			out := r.subjectVersion(v)
			r.mu.RUnlock()
			return out, nil
		}
	}
	existing := make([]schema.Versioned, len(live))
	for i, v := range live {
		existing[i] = schema.Versioned{Version: v.Version, Schema: r.ids[v.ID].schema}
	}
	level := r.levelLocked(subject)
	id, known := r.byText[norm]
	if !known {
		id = r.maxID + 1
	}
	version := 1
	for v := range r.subjects[subject] {
		version = max(version, v+1)
	}
	r.mu.RUnlock()

	if err := schema.CheckCompatibility(level, s, existing); err != nil {
		return SubjectVersion{}, errIncompatible(subject, err)
	}
	var recs []Record
	if !known {
		recs = append(recs, Record{Key: Key{Type: KeyID, ID: id}, Value: mustJSON(IDValue{ID: id, Schema: norm})})
	}
	vv := VersionValue{Subject: subject, Version: version, ID: id}
	recs = append(recs, Record{Key: Key{Type: KeySchema, Subject: subject, Version: version}, Value: mustJSON(vv)})
	if err := r.write(ctx, recs...); err != nil {
		return SubjectVersion{}, err
	}
	r.log.Info("schema registered", "subject", subject, "version", version, "id", id)
	return SubjectVersion{Subject: subject, Version: version, ID: id, Schema: norm}, nil
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
	return r.subjectVersion(v), nil
}

func (r *Registry) findLocked(subject string, version int, deleted bool) (*VersionValue, error) {
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

// Lookup finds the version of subject holding text.
func (r *Registry) Lookup(subject, schemaType, text string, deleted bool) (SubjectVersion, error) {
	s, err := parse(schemaType, text)
	if err != nil {
		return SubjectVersion{}, err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	vs := r.sortedVersions(subject, deleted)
	if len(vs) == 0 {
		return SubjectVersion{}, errSubjectNotFound(subject)
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if r.ids[vs[i].ID].text == s.String() {
			return r.subjectVersion(vs[i]), nil
		}
	}
	return SubjectVersion{}, errSchemaNotFound("no version of subject '" + subject + "' has this schema")
}

// DeleteVersion deletes one version of subject (-1: the latest). A permanent
// (hard) delete needs an earlier soft delete.
func (r *Registry) DeleteVersion(ctx context.Context, subject string, version int, permanent bool) (int, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	all := r.sortedVersions(subject, true)
	if len(all) == 0 {
		r.mu.RUnlock()
		return 0, errSubjectNotFound(subject)
	}
	var target *VersionValue
	if version == latestVersion {
		cands := all
		if !permanent {
			cands = r.sortedVersions(subject, false)
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
	r.mu.RUnlock()
	if target == nil {
		return 0, errVersionNotFound(subject, version)
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
	return target.Version, r.write(ctx, Record{Key: key, Value: mustJSON(nv)})
}

// DeleteSubject deletes every version of subject and returns their numbers.
// A permanent delete needs an earlier soft delete of the subject, and also
// removes the subject's compatibility level.
func (r *Registry) DeleteSubject(ctx context.Context, subject string, permanent bool) ([]int, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	all := r.sortedVersions(subject, true)
	live := r.sortedVersions(subject, false)
	_, hasLevel := r.levels[subject]
	r.mu.RUnlock()
	if len(all) == 0 {
		return nil, errSubjectNotFound(subject)
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
		if hasLevel {
			recs = append(recs, Record{Key: Key{Type: KeyConfig, Subject: subject}})
		}
	case len(live) == 0:
		return nil, &Error{Code: CodeSubjectSoftDeleted, Message: "Subject '" + subject + "' was soft deleted. Set permanent=true to delete permanently"}
	default:
		for _, v := range live {
			nv := *v
			nv.Deleted = true
			recs = append(recs, Record{Key: Key{Type: KeySchema, Subject: subject, Version: v.Version}, Value: mustJSON(nv)})
			versions = append(versions, v.Version)
		}
	}
	if err := r.write(ctx, recs...); err != nil {
		return nil, err
	}
	return versions, nil
}

// SchemaByID returns the normalised schema text of a global ID.
func (r *Registry) SchemaByID(id int) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.ids[id]
	if !ok {
		return "", errSchemaNotFound("schema " + strconv.Itoa(id) + " not found")
	}
	return e.text, nil
}

// ParsedByID returns the parsed schema of a global ID.
func (r *Registry) ParsedByID(id int) (*schema.Schema, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.ids[id]
	if !ok {
		return nil, errSchemaNotFound("schema " + strconv.Itoa(id) + " not found")
	}
	return e.schema, nil
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
				out = append(out, r.subjectVersion(v))
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

// CheckCompatibility checks text against subject: against one version
// (under the direction of the subject's level), or with version -1 against
// the latest (all live versions for a transitive level), or with version 0
// against all live versions. It returns whether the schema is compatible and
// the reasons when it is not.
func (r *Registry) CheckCompatibility(subject string, version int, schemaType, text string) (bool, []string, error) {
	s, err := parse(schemaType, text)
	if err != nil {
		return false, nil, err
	}
	r.mu.RLock()
	level := r.levelLocked(subject)
	live := r.sortedVersions(subject, false)
	var against []*VersionValue
	switch version {
	case 0, latestVersion:
		against = live
		if len(live) == 0 && version == latestVersion {
			r.mu.RUnlock()
			return false, nil, errSubjectNotFound(subject)
		}
	default:
		v, err := r.findLocked(subject, version, false)
		if err != nil {
			r.mu.RUnlock()
			return false, nil, err
		}
		against = []*VersionValue{v}
	}
	existing := make([]schema.Versioned, len(against))
	for i, v := range against {
		existing[i] = schema.Versioned{Version: v.Version, Schema: r.ids[v.ID].schema}
	}
	r.mu.RUnlock()
	if version == 0 && !level.Transitive() && level != schema.None {
		level = transitiveOf(level)
	}
	if err := schema.CheckCompatibility(level, s, existing); err != nil {
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
