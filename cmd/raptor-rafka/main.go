// Command raptor-rafka serves Rafka's gRPC BrokerService (Rafka's own
// .proto, plain protobuf) on one port number over TCP and Raptor, stored in
// an embedded Kafka-protocol broker or in --brokers (docs/RAFKA.md). It is
// kept out of the raptor binary (which stays small for the edge); `raptor
// rafka` runs it when it is installed beside raptor or on PATH.
//
//	go run ./cmd/raptor-rafka serve --listen 127.0.0.1:50051
package main

import "os"

func main() {
	os.Exit(runRafka(os.Args[1:], os.Stdout, os.Stderr))
}
