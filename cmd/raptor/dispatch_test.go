package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// asRaptor makes the test binary run as raptor itself (main) when a test
// executes it with this variable set, so that the dispatch, whose exec
// replaces the process, runs in a process of its own.
const asRaptor = "RAPTOR_DISPATCH_TEST_AS_RAPTOR"

func TestMain(m *testing.M) {
	if os.Getenv(asRaptor) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// raptorBinary puts the test binary into dir as raptor (a hard link, else a
// copy): os.Executable then names dir, where raptor looks first for its
// separate commands.
func raptorBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "raptor")
	if err := os.Link(self, dst); err == nil {
		return dst
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// fakeCommand writes a raptor-<name> shell script into dir that prints who
// it is and each of its arguments on a line of its own, then exits with
// code.
func fakeCommand(t *testing.T, dir, name, who, code string, mode os.FileMode) {
	t.Helper()
	script := "#!/bin/sh\necho " + who + "\nfor a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\nexit " + code + "\n"
	if err := os.WriteFile(filepath.Join(dir, "raptor-"+name), []byte(script), mode); err != nil {
		t.Fatal(err)
	}
}

// TestDispatchExternal runs raptor (the test binary as main) with a command
// it does not carry: the executable raptor-<name> beside raptor, else on
// PATH, gets the remaining arguments unchanged and its exit status is
// raptor's; without one raptor exits 2 and says how to get it.
func TestDispatchExternal(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the fake commands are shell scripts")
	}
	args := []string{"--flag", "a b", "", "-h", "x=y"}
	for _, tc := range []struct {
		name       string
		beside     string // who the raptor-xyz beside raptor is ("" none; "noexec": a file without the executable bit)
		onPath     string // who the raptor-xyz on PATH is ("" none)
		cmd        string
		wantCode   int
		wantStdout string // the first line; the arguments follow
		wantStderr string
	}{
		{name: "beside raptor", beside: "beside", cmd: "xyz", wantCode: 7, wantStdout: "beside"},
		{name: "on PATH", onPath: "onpath", cmd: "xyz", wantCode: 7, wantStdout: "onpath"},
		{name: "beside raptor before PATH", beside: "beside", onPath: "onpath", cmd: "xyz", wantCode: 7, wantStdout: "beside"},
		{name: "not executable beside, on PATH", beside: "noexec", onPath: "onpath", cmd: "xyz", wantCode: 7, wantStdout: "onpath"},
		{name: "exit status 0", onPath: "onpath", cmd: "xyz", wantCode: 0, wantStdout: "onpath"},
		{name: "a separate command of the repository, missing", cmd: "demo", wantCode: 2,
			wantStderr: `raptor: "demo" is the separate command raptor-demo (kept out of raptor to keep it small): go run ./cmd/raptor-demo, or go install ./cmd/... to make "raptor demo" work`},
		{name: "unknown command", beside: "noexec", cmd: "xyz", wantCode: 2, wantStderr: `raptor: unknown command "xyz" (raptor-xyz: no such executable beside raptor or on PATH)`},
		{name: "a path is not a command", onPath: "onpath", cmd: "../bin/xyz", wantCode: 2, wantStderr: `raptor: unknown command "../bin/xyz" ("../bin/xyz" is not a command name)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			selfDir, pathDir := t.TempDir(), t.TempDir()
			raptor := raptorBinary(t, selfDir)
			cmdName := strings.TrimPrefix(tc.cmd, "../bin/")
			code := "7"
			if tc.wantCode == 0 {
				code = "0"
			}
			switch tc.beside {
			case "":
			case "noexec":
				fakeCommand(t, selfDir, cmdName, "noexec", code, 0o644)
			default:
				fakeCommand(t, selfDir, cmdName, tc.beside, code, 0o755)
			}
			if tc.onPath != "" {
				fakeCommand(t, pathDir, cmdName, tc.onPath, code, 0o755)
			}
			cmd := exec.Command(raptor, append([]string{tc.cmd}, args...)...)
			cmd.Env = append(os.Environ(), asRaptor+"=1", "PATH="+pathDir)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			got := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				got = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout %q\nstderr %q", got, tc.wantCode, stdout.String(), stderr.String())
			}
			if tc.wantStdout != "" {
				want := []string{tc.wantStdout}
				for _, a := range args {
					want = append(want, "<"+a+">")
				}
				if lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n"); !slices.Equal(lines, want) {
					t.Errorf("stdout lines %q, want %q", lines, want)
				}
				if stderr.Len() != 0 {
					t.Errorf("stderr %q, want nothing", stderr.String())
				}
			}
			if tc.wantStderr != "" {
				if first, _, _ := strings.Cut(stderr.String(), "\n"); first != tc.wantStderr {
					t.Errorf("stderr begins %q, want %q", first, tc.wantStderr)
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout %q, want nothing", stdout.String())
				}
			}
		})
	}
}

// TestHelpListsCommands: `raptor help` lists the built-in commands and the
// separate ones, marked, and says which are not installed.
func TestHelpListsCommands(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	fakeCommand(t, dir, "bench", "bench", "0", 0o755)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	builtin, external, ok := strings.Cut(out, "Separate commands")
	if !ok {
		t.Fatalf("no separate commands in:\n%s", out)
	}
	for _, name := range []string{"broker", "gateway", "proxy", "stat"} {
		if _, ok := commands[name]; !ok && name == "broker" {
			continue // built with -tags nobroker
		}
		if !strings.Contains(builtin, "\n  "+name+" ") {
			t.Errorf("built-in %s is not listed:\n%s", name, out)
		}
	}
	for _, e := range []struct{ name, mark string }{
		{"bench", "[external: raptor-bench]"},
		{"demo", "[external: raptor-demo, not installed]"},
		{"rafka", "[external: raptor-rafka, not installed]"},
		{"schema", "[external: raptor-schema, not installed]"},
	} {
		var line string
		for _, l := range strings.Split(external, "\n") {
			if strings.HasPrefix(l, "  "+e.name+" ") {
				line = l
			}
		}
		if !strings.HasSuffix(line, e.mark) {
			t.Errorf("%s: line %q, want it to end %q", e.name, line, e.mark)
		}
		if strings.Contains(builtin, "\n  "+e.name+" ") {
			t.Errorf("%s is listed as built in:\n%s", e.name, out)
		}
	}
	if code := run(nil, &stdout, &stderr); code != 2 {
		t.Errorf("raptor without a command: exit %d, want 2", code)
	}
}

func TestCommandName(t *testing.T) {
	for _, tc := range []struct {
		s  string
		ok bool
	}{
		{"demo", true}, {"my-tool_2", true}, {"X1", true},
		{"", false}, {"-h", false}, {"--version", false}, {"_x", false},
		{"a/b", false}, {"..", false}, {"a b", false}, {"dé", false}, {`a\b`, false},
	} {
		if got := commandName(tc.s); got != tc.ok {
			t.Errorf("commandName(%q) = %v, want %v", tc.s, got, tc.ok)
		}
	}
}
