package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// Key types of stored records. They are the key types of the Confluent
// Schema Registry's "_schemas" topic, so a Raptor registry reads a topic
// written by Confluent's and the reverse (docs/SCHEMA.md, "Storage").
const (
	KeySchema        = "SCHEMA"         // one subject version: {subject, version} -> SchemaValue
	KeyConfig        = "CONFIG"         // compatibility level, global ("" subject) or per subject -> ConfigValue
	KeyMode          = "MODE"           // mode, global ("" subject) or per subject -> ModeValue
	KeyNoop          = "NOOP"           // written by Confluent's registry to sync its readers; carries nothing
	KeyDeleteSubject = "DELETE_SUBJECT" // Confluent's soft delete of a subject up to a version -> DeleteSubjectValue
	KeyClearSubject  = "CLEAR_SUBJECT"  // Confluent's marker after a hard delete; the tombstones carry the state
	KeyContext       = "CONTEXT"        // Confluent's schema context marker; only the default context is served
	// KeyID is Raptor's own ID record, only in FileStore logs: older logs
	// held one per ID; compaction now writes one for an ID whose every
	// version was hard-deleted, so the ID is never reused.
	KeyID = "ID"
)

// Key identifies a stored record. Records with equal keys replace each other
// (the last one wins, as on a compacted Kafka topic); a record with a nil
// value deletes its key.
type Key struct {
	Type string
	// Subject names the subject; "" is the global entry of CONFIG and MODE.
	Subject string
	// Version is the subject version of a SCHEMA key.
	Version int
	// ID is the schema ID of a legacy ID key.
	ID int
}

// Bytes returns the key in the canonical form of Confluent's registry
// (Jackson, in the property order of its key classes, "subject":null for a
// global entry), so that compaction on a shared topic collapses a Raptor
// record and a Confluent record of the same key.
func (k Key) Bytes() []byte {
	b := []byte(`{"keytype":`)
	b = strconv.AppendQuote(b, k.Type)
	subject := func() {
		b = append(b, `,"subject":`...)
		if k.Subject == "" {
			b = append(b, "null"...)
		} else {
			b = appendJSONString(b, k.Subject)
		}
	}
	switch k.Type {
	case KeySchema:
		b = append(b, `,"subject":`...)
		b = appendJSONString(b, k.Subject)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(k.Version), 10)
		b = append(b, `,"magic":1`...)
	case KeyID:
		b = append(b, `,"id":`...)
		b = strconv.AppendInt(b, int64(k.ID), 10)
	case KeyNoop, KeyContext:
		b = append(b, `,"magic":0`...)
	default:
		subject()
		b = append(b, `,"magic":0`...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string without HTML escaping, as
// Jackson writes it.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// Reference names another registered schema that a schema uses: by Name in
// its text (an Avro full name, a JSON Schema URL, a Protobuf import path),
// stored under Subject at Version.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// SchemaValue is the value of a KeySchema record, as Confluent writes it.
type SchemaValue struct {
	Subject    string      `json:"subject"`
	Version    int         `json:"version"`
	ID         int         `json:"id"`
	SchemaType string      `json:"schemaType,omitempty"` // "" is AVRO
	References []Reference `json:"references,omitempty"`
	// Schema is the text as registered. Legacy Raptor records leave it empty:
	// the text is then in the ID record.
	Schema  string `json:"schema"`
	Deleted bool   `json:"deleted"`
}

// ConfigValue is the value of a KeyConfig record.
type ConfigValue struct {
	CompatibilityLevel string `json:"compatibilityLevel"`
}

// ModeValue is the value of a KeyMode record.
type ModeValue struct {
	Mode string `json:"mode"`
}

// DeleteSubjectValue is the value of Confluent's KeyDeleteSubject record:
// every version of Subject up to Version is soft-deleted.
type DeleteSubjectValue struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// legacyIDValue is the value of a KeyID record: the ID records of older
// Raptor logs, and the ones FileStore compaction keeps for IDs whose every
// version was hard-deleted.
type legacyIDValue struct {
	ID         int         `json:"id"`
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
}

// Record is one entry of the registry's log.
type Record struct {
	Key   Key
	Value []byte // nil: tombstone
}

// KeyError reports a record key that is not one of the registry's.
type KeyError struct {
	// Key is the key as read, cut to 200 bytes.
	Key string
	// Reason says what is wrong.
	Reason string
}

// Error implements error.
func (e *KeyError) Error() string {
	return fmt.Sprintf("registry: bad record key %q: %s", e.Key, e.Reason)
}

// DecodeKey parses a record key written by Raptor's or Confluent's registry.
// A key of another kind (not JSON, or an unknown "keytype") is a *KeyError.
func DecodeKey(b []byte) (Key, error) {
	var raw struct {
		Type    string  `json:"keytype"`
		Subject *string `json:"subject"`
		Version int     `json:"version"`
		ID      int     `json:"id"`
		Magic   int     `json:"magic"`
	}
	short := string(b[:min(len(b), 200)])
	if err := json.Unmarshal(b, &raw); err != nil {
		return Key{}, &KeyError{Key: short, Reason: "not a JSON registry key: " + err.Error()}
	}
	k := Key{Type: raw.Type, Version: raw.Version, ID: raw.ID}
	if raw.Subject != nil {
		k.Subject = *raw.Subject
	}
	switch k.Type {
	case KeySchema:
		if k.Version < 1 || k.Subject == "" {
			return Key{}, &KeyError{Key: short, Reason: "SCHEMA key without subject or positive version"}
		}
	case KeyDeleteSubject, KeyClearSubject:
		if k.Subject == "" {
			return Key{}, &KeyError{Key: short, Reason: k.Type + " key without subject"}
		}
	case KeyID:
		if k.ID < 1 {
			return Key{}, &KeyError{Key: short, Reason: "ID key without positive id"}
		}
	case KeyConfig, KeyMode, KeyNoop, KeyContext:
	default:
		return Key{}, &KeyError{Key: short, Reason: fmt.Sprintf("unknown keytype %q", k.Type)}
	}
	return k, nil
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
