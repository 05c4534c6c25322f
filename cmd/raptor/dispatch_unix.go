//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// execExternal replaces this process with the program at path, named argv0,
// so that its exit status, signals and standard streams are the caller's
// own. It returns only when exec fails.
func execExternal(path, argv0 string, args []string, _, stderr io.Writer) int {
	err := syscall.Exec(path, append([]string{argv0}, args...), os.Environ())
	fmt.Fprintf(stderr, "raptor: exec %s: %v\n", path, err)
	return 126
}
