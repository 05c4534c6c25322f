// Command raptor is Raptor's command for the edge and in front of brokers:
// the embedded broker, the gateway and the proxy, and live counters (stat).
//
// The heavier commands are separate executables, kept out of this one to
// keep it small (README, "The CLI"): raptor-demo, raptor-bench,
// raptor-schema and raptor-rafka. `raptor <name>` for a command it does not
// carry runs the executable raptor-<name> found beside its own executable
// or on PATH, as git runs git-<name> (dispatch.go).
//
// Built with -tags nobroker it leaves out the embedded broker (broker.go,
// and with it franz-go's kfake and client): a gateway and proxy for small
// devices, 3.2 MB lighter (scripts/test.sh prints both sizes).
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one built-in subcommand of the CLI. Each lives in its own file
// and adds itself to commands in an init function.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(name string, c command) {
	if _, dup := commands[name]; dup {
		panic("raptor: command registered twice: " + name)
	}
	commands[name] = c
}

// externals are the separate commands of this repository that `raptor
// <name>` runs (cmd/raptor-<name>); any other raptor-<name> found runs too.
var externals = []struct{ name, summary string }{
	{"bench", "benchmarks side by side: rtt, throughput, kafka, idle over raptor, tcp (plain, buffered, TLS), udp"},
	{"demo", "Kafka over TCP and over Raptor side by side on an embedded broker (the main job)"},
	{"rafka", "Rafka's gRPC BrokerService over TCP and Raptor, stored in Kafka ('rafka serve')"},
	{"schema", "schema registry: serve, register, get, check, mode"},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: raptor <command> [flags]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nSeparate commands (the executable raptor-<command>, run from beside raptor or from PATH;")
	fmt.Fprintln(w, "'go install ./cmd/...' installs them all):")
	for _, e := range externals {
		mark := "external: raptor-" + e.name
		if _, err := findExternal(e.name); err != nil {
			mark += ", not installed"
		}
		fmt.Fprintf(w, "  %-10s %s [%s]\n", e.name, e.summary, mark)
	}
	fmt.Fprintln(w, "\nRun 'raptor <command> -h' for the flags of a command.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if c, ok := commands[args[0]]; ok {
		return c.run(args[1:], stdout, stderr)
	}
	return runExternal(args[0], args[1:], stdout, stderr)
}
