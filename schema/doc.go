// Package schema is Raptor's schema layer: Avro schemas (parsed and
// canonicalised with github.com/hamba/avro/v2) describing msgpack payloads,
// compatibility levels checked between schema versions, writer/reader
// resolution so that a consumer holding reader schema R decodes data written
// with writer schema W, and the Confluent wire framing (magic byte 0, a
// big-endian 4-byte schema ID, then the msgpack body).
//
// The package imports nothing else of Raptor. The registry (subjects,
// versions, IDs, storage) lives in schema/registry, its Confluent-compatible
// HTTP API in schema/httpapi, and the application helpers in schema/serde.
// docs/SCHEMA.md describes the msgpack mapping of every Avro type.
package schema
