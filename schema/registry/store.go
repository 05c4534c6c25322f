package registry

import (
	"context"
	"encoding/json"
	"fmt"
)

// Key types of stored records.
const (
	KeySchema = "SCHEMA" // one subject version: {subject, version} -> VersionValue
	KeyID     = "ID"     // one global schema ID: {id} -> IDValue; never deleted
	KeyConfig = "CONFIG" // compatibility level, global ("" subject) or per subject
)

// Key identifies a stored record. Records with equal keys replace each other
// (the last one wins, as on a compacted Kafka topic); a record with a nil
// value deletes its key.
type Key struct {
	Type    string `json:"keytype"`
	Subject string `json:"subject,omitempty"`
	Version int    `json:"version,omitempty"`
	ID      int    `json:"id,omitempty"`
}

// Bytes returns the JSON encoding of k, used as the Kafka record key.
func (k Key) Bytes() []byte {
	b, _ := json.Marshal(k) // a struct of strings and ints always marshals
	return b
}

// VersionValue is the value of a KeySchema record.
type VersionValue struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Deleted bool   `json:"deleted,omitempty"`
}

// IDValue is the value of a KeyID record: the normalised schema text.
type IDValue struct {
	ID     int    `json:"id"`
	Schema string `json:"schema"`
}

// ConfigValue is the value of a KeyConfig record.
type ConfigValue struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

// Record is one entry of the registry's log.
type Record struct {
	Key   Key
	Value []byte // nil: tombstone
}

// DecodeKey parses a record key.
func DecodeKey(b []byte) (Key, error) {
	var k Key
	if err := json.Unmarshal(b, &k); err != nil {
		return Key{}, fmt.Errorf("registry: bad record key %.80q: %w", b, err)
	}
	switch k.Type {
	case KeySchema, KeyID, KeyConfig:
		return k, nil
	}
	return Key{}, fmt.Errorf("registry: unknown record key type %q", k.Type)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("registry: marshal %T: %v", v, err)) // only fixed structs are marshalled
	}
	return b
}

// Store keeps the registry's records. Implementations: FileStore (a local
// append-only log, fsynced) and kafkastore.Store (a compacted Kafka topic
// shared by several registry instances).
type Store interface {
	// Start delivers every stored record to apply, in order, and returns once
	// they all have been delivered. A shared store then keeps delivering
	// records written by other instances until Close. apply is never called
	// concurrently with itself.
	Start(ctx context.Context, apply func(Record)) error
	// Write stores recs durably, in order, and returns after apply has been
	// called with them.
	Write(ctx context.Context, recs []Record) error
	// Sync returns once every record stored before the call (by any
	// instance) has been applied.
	Sync(ctx context.Context) error
	// Close releases the store. It is idempotent.
	Close() error
}
