// Command raptor is Raptor's command-line tool: the demo, the embedded broker,
// the gateway and proxy, Rafka's service (rafka.go), benchmarks, live counters
// and the schema registry.
//
// Built with -tags edge it keeps only broker, gateway, proxy and stat, for
// small devices (14.0 MB stripped instead of 28.8; scripts/test.sh checks
// both).
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand of the CLI. Each lives in its own file and adds
// itself to commands in an init function.
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
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "raptor: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}
