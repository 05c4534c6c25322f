package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// runExternal runs `raptor name args...` for a command raptor does not
// carry: the executable raptor-<name> (findExternal) with args, passing its
// exit status through. Without one it exits 2, saying how to get it.
func runExternal(name string, args []string, stdout, stderr io.Writer) int {
	path, err := findExternal(name)
	if err == nil {
		return execExternal(path, "raptor-"+name, args, stdout, stderr)
	}
	for _, e := range externals {
		if e.name == name {
			fmt.Fprintf(stderr, "raptor: %q is the separate command raptor-%s (kept out of raptor to keep it small): go run ./cmd/raptor-%s, or go install ./cmd/... to make \"raptor %s\" work\n", name, name, name, name)
			return 2
		}
	}
	fmt.Fprintf(stderr, "raptor: unknown command %q (%v)\n\n", name, err)
	usage(stderr)
	return 2
}

// errNoExternal is findExternal's error when no raptor-<name> is found.
var errNoExternal = errors.New("no such executable beside raptor or on PATH")

// findExternal returns the path of the executable raptor-<name>: the one in
// the directory of raptor's own executable first (a `go install ./cmd/...`
// or an unpacked release puts them together), else the first on PATH. name
// must be a plain command name, not a path or a flag.
func findExternal(name string) (string, error) {
	if !commandName(name) {
		return "", fmt.Errorf("%q is not a command name", name)
	}
	file := "raptor-" + name
	if self, err := os.Executable(); err == nil {
		// A name with a separator is looked at only there (and given an
		// executable suffix where the system has them), not on PATH.
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(self), file)); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, errNoExternal)
	}
	return p, nil
}

// commandName reports whether s is a command name: ASCII letters, digits,
// '-' and '_', beginning with a letter or digit.
func commandName(s string) bool {
	if s == "" || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
