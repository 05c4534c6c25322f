// Command raptor-demo is Raptor's main job: Kafka over TCP and over Raptor
// side by side on an embedded broker, counting every record lost or
// duplicated (README, "Quick start"). It is kept out of the raptor binary
// (which stays small for the edge); `raptor demo` runs it when it is
// installed beside raptor or on PATH.
//
//	go run ./cmd/raptor-demo [--loss 5] [--json]
package main

import "os"

func main() {
	os.Exit(runDemo(os.Args[1:], os.Stdout, os.Stderr))
}
