// Package cli holds what the raptor commands share (cmd/raptor and the
// separate cmd/raptor-* commands): flag parsing, the logger, repeatable
// flags and the --metrics server. Each command's own code stays in its main
// package, so that a binary links only the commands it carries.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// ParseFlags parses args with fs, a command that takes no positional
// arguments. ok false means the command ends with code: 0 after -h, 2 after
// a bad flag or a stray argument (fs has reported it on its output).
func ParseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// NewLogger is the text logger on w of a command with a -v flag: debug
// level when verbose, info otherwise.
func NewLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// MultiFlag is a repeatable flag of strings; one value may also hold several,
// comma separated.
type MultiFlag []string

func (m *MultiFlag) String() string { return strings.Join(*m, ",") }

// Set appends the comma-separated, non-empty values of v.
func (m *MultiFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*m = append(*m, s)
		}
	}
	return nil
}
