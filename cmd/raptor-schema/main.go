// Command raptor-schema is Raptor's Confluent-compatible schema registry
// (Avro, JSON Schema, Protobuf; docs/SCHEMA.md): `serve` runs it on a local
// fsynced log or on a compacted Kafka topic, and register, get, check and
// mode are its client. It is kept out of the raptor binary (which stays
// small for the edge); `raptor schema` runs it when it is installed beside
// raptor or on PATH.
//
//	go run ./cmd/raptor-schema serve --data /var/lib/raptor/schemas
package main

import "os"

func main() {
	os.Exit(runSchema(os.Args[1:], os.Stdout, os.Stderr))
}
