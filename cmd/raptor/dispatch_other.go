//go:build !unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// execExternal runs the program at path with args as a child (the system
// has no exec that replaces a process), wired to this process's standard
// input and to stdout and stderr, and returns its exit status.
func execExternal(path, _ string, args []string, stdout, stderr io.Writer) int {
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	fmt.Fprintf(stderr, "raptor: run %s: %v\n", path, err)
	return 126
}
