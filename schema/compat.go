package schema

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Level is a compatibility level, as named by the Confluent Schema Registry.
type Level string

// The compatibility levels. "Backward" means the new schema can read data
// written with the old one; "forward" means data written with the new schema
// can be read with the old one; "full" is both. The transitive forms check
// against every earlier version instead of only the latest.
const (
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
	None               Level = "NONE"
)

// DefaultLevel is the level in force when none is configured.
const DefaultLevel = Backward

// Levels lists every level.
var Levels = []Level{Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive, None}

func levelNames() []string {
	out := make([]string, len(Levels))
	for i, l := range Levels {
		out[i] = string(l)
	}
	return out
}

// ParseLevel parses a level name, ignoring case.
func ParseLevel(s string) (Level, error) {
	u := Level(strings.ToUpper(s))
	for _, l := range Levels {
		if l == u {
			return l, nil
		}
	}
	return "", &LevelError{Value: s}
}

// Transitive reports whether l checks every earlier version.
func (l Level) Transitive() bool {
	return l == BackwardTransitive || l == ForwardTransitive || l == FullTransitive
}

// Backward reports whether l requires the new schema to read data written
// with the old ones.
func (l Level) Backward() bool { return l.backward() }

// Forward reports whether l requires the old schemas to read data written
// with the new one.
func (l Level) Forward() bool { return l.forward() }

func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}

func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}

// Versioned is an existing schema together with its version number, used to
// name the version in compatibility messages.
type Versioned struct {
	Version int
	Schema  *Schema
}

// CheckCompatibility checks candidate against existing versions (oldest
// first) under level: against the latest only, or against all of them for the
// transitive levels. It returns nil or an *IncompatibleError listing every
// problem found. The per-pair check is hamba/avro's SchemaCompatibility, which
// implements the Avro specification's schema resolution rules.
func CheckCompatibility(level Level, candidate *Schema, existing []Versioned) error {
	vs := make([]VersionedOf[*Schema], len(existing))
	for i, v := range existing {
		vs[i] = VersionedOf[*Schema]{Version: v.Version, Schema: v.Schema}
	}
	return CheckLevel(level, candidate, vs, compatible)
}

// VersionedOf is an existing schema of any type with its version number.
type VersionedOf[S any] struct {
	Version int
	Schema  S
}

// CheckLevel applies level to any schema type: canRead(reader, writer)
// reports whether reader reads data written with writer. It checks the
// latest existing version (oldest first in existing), or every one for the
// transitive levels, and returns nil or an *IncompatibleError listing every
// problem found.
func CheckLevel[S any](level Level, candidate S, existing []VersionedOf[S], canRead func(reader, writer S) error) error {
	if level == None || len(existing) == 0 {
		return nil
	}
	against := existing
	if !level.Transitive() {
		against = existing[len(existing)-1:]
	}
	var msgs []string
	for i := len(against) - 1; i >= 0; i-- {
		old := against[i]
		if level.backward() {
			if err := canRead(candidate, old.Schema); err != nil {
				msgs = append(msgs, fmt.Sprintf("version %d: new schema cannot read data written with it (backward): %v", old.Version, err))
			}
		}
		if level.forward() {
			if err := canRead(old.Schema, candidate); err != nil {
				msgs = append(msgs, fmt.Sprintf("version %d: it cannot read data written with the new schema (forward): %v", old.Version, err))
			}
		}
	}
	if len(msgs) > 0 {
		return &IncompatibleError{Level: level, Messages: msgs}
	}
	return nil
}

// Compatible reports whether data written with writer can be read with
// reader, returning the first problem found.
func Compatible(reader, writer *Schema) error { return compatible(reader, writer) }

func compatible(reader, writer *Schema) error {
	// A fresh checker per call: hamba caches results by canonical fingerprint,
	// and the canonical form drops defaults and aliases, which matter here.
	if err := avro.NewSchemaCompatibility().Compatible(reader.avro, writer.avro); err != nil {
		return err
	}
	// hamba does not check enum defaults against symbols across versions and
	// accepts resolution where our decoder is stricter; confirm with the
	// resolver, which names the field.
	_, err := NewResolver(writer, reader)
	return err
}
