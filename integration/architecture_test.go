package integration

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var updateArchitecture = flag.Bool("update-architecture", false, "rewrite the package graph in docs/ARCHITECTURE.md from go list")

const (
	graphBegin = "<!-- package graph: begin (integration/architecture_test.go) -->"
	graphEnd   = "<!-- package graph: end -->"
)

// packageGraph lists every package of the module with the packages of the
// module it imports (non-test imports, default build tags), as go list
// reports them, one line a package.
func packageGraph(t *testing.T) string {
	t.Helper()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "list", "-json=ImportPath,Imports,Module", "./...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOFLAGS=", "CGO_ENABLED=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, stderr.String())
	}
	type pkg struct {
		ImportPath string
		Imports    []string
		Module     struct{ Path string }
	}
	var lines []string
	width := 0
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); dec.More(); {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
		width = max(width, len(strings.TrimPrefix(p.ImportPath, p.Module.Path+"/")))
	}
	for _, p := range pkgs {
		prefix := p.Module.Path + "/"
		var deps []string
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, prefix) {
				deps = append(deps, strings.TrimPrefix(imp, prefix))
			}
		}
		slices.Sort(deps)
		d := "(nothing of ours)"
		if len(deps) > 0 {
			d = strings.Join(deps, " ")
		}
		lines = append(lines, fmt.Sprintf("%-*s -> %s", width, strings.TrimPrefix(p.ImportPath, prefix), d))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

// TestArchitecturePackageGraph: the package graph in docs/ARCHITECTURE.md is
// the one go list reports. After a change of imports, regenerate it with
//
//	go test ./integration -run TestArchitecturePackageGraph -update-architecture
func TestArchitecturePackageGraph(t *testing.T) {
	const path = "../docs/ARCHITECTURE.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok1 := strings.Cut(string(doc), graphBegin+"\n```\n")
	old, after, ok2 := strings.Cut(rest, "```\n"+graphEnd)
	if !ok1 || !ok2 {
		t.Fatalf("%s has no package graph between %q and %q", path, graphBegin, graphEnd)
	}
	got := packageGraph(t)
	if old == got {
		return
	}
	if *updateArchitecture {
		if err := os.WriteFile(path, []byte(before+graphBegin+"\n```\n"+got+"```\n"+graphEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the package graph in %s", path)
		return
	}
	t.Errorf("the package graph in %s is stale; go list says:\n%s\nregenerate with: go test ./integration -run TestArchitecturePackageGraph -update-architecture", path, got)
}
