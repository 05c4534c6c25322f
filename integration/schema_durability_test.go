package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/raptormq/raptor/schema/httpapi"
	"github.com/raptormq/raptor/schema/registry"
)

// envSchemaChild makes TestSchemaRegistryChild serve a registry on the file
// store in the named directory; the parent test kills it with SIGKILL.
const envSchemaChild = "RAPTOR_SCHEMA_CHILD_DIR"

// TestSchemaRegistryChild is the child process of TestSchemaDurabilitySIGKILL,
// not a test of its own: it serves until killed.
func TestSchemaRegistryChild(t *testing.T) {
	dir := os.Getenv(envSchemaChild)
	if dir == "" {
		t.Skip("helper process for TestSchemaDurabilitySIGKILL")
	}
	fs, err := registry.OpenFileStore(dir, nil)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	reg, err := registry.Open(context.Background(), registry.Config{Store: fs})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	h, err := httpapi.New(httpapi.Config{Registry: reg})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	fmt.Printf("LISTENING http://%s\n", ln.Addr())
	http.Serve(ln, h) // until SIGKILL
}

type schemaChild struct {
	cmd *exec.Cmd
	url string
}

func schemaStartChild(t *testing.T, dir string) *schemaChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSchemaRegistryChild$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), envSchemaChild+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "LISTENING ") || strings.HasPrefix(sc.Text(), "ERROR") {
				lines <- sc.Text()
				break
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, "LISTENING ") {
			t.Fatalf("child did not start: %q", line)
		}
		return &schemaChild{cmd: cmd, url: strings.TrimPrefix(line, "LISTENING ")}
	case <-time.After(60 * time.Second):
		t.Fatal("child did not start within 60s")
	}
	return nil
}

func (c *schemaChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := c.cmd.Wait()
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child not killed by SIGKILL: %v", err)
	}
}

// TestSchemaDurabilitySIGKILL: the registry process is killed with SIGKILL
// (no Close, no flush) right after register calls return; the restarted
// process on the same directory serves every acknowledged schema, config,
// mode and delete, and allocates the next ID after them.
func TestSchemaDurabilitySIGKILL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()

	c := schemaStartChild(t, dir)
	cl, err := sr.NewClient(sr.URLs(c.url))
	if err != nil {
		t.Fatal(err)
	}
	id1, err := cl.RegisterSchema(ctx, "d-value", sr.Schema{Schema: schemaUserV1}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "d-value"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	id2, err := cl.RegisterSchema(ctx, "d-value", sr.Schema{Schema: schemaUserV2}, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if r := cl.SetMode(ctx, sr.ModeReadOnly, "frozen-value"); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	c.kill(t)

	c = schemaStartChild(t, dir)
	cl, err = sr.NewClient(sr.URLs(c.url))
	if err != nil {
		t.Fatal(err)
	}
	latest, err := cl.SchemaByVersion(ctx, "d-value", -1)
	if err != nil || latest.ID != id2 || latest.Version != 2 {
		t.Fatalf("after SIGKILL: latest %+v %v (want id %d version 2)", latest, err, id2)
	}
	if s, err := cl.SchemaByID(ctx, id1); err != nil || !strings.Contains(s.Schema, `"legacy"`) {
		t.Fatalf("after SIGKILL: schema %d: %+v %v", id1, s, err)
	}
	if r := cl.Compatibility(ctx, "d-value"); r[0].Err != nil || r[0].Level != sr.CompatNone {
		t.Fatalf("after SIGKILL: subject level %+v", r[0])
	}
	if r := cl.Mode(ctx, "frozen-value"); r[0].Err != nil || r[0].Mode != sr.ModeReadOnly {
		t.Fatalf("after SIGKILL: subject mode %+v", r[0])
	}
	if _, err := cl.RegisterSchema(ctx, "frozen-value", sr.Schema{Schema: schemaUserV1}, -1, -1); err == nil {
		t.Fatal("after SIGKILL: a READONLY subject accepted a registration")
	}
	if r := cl.SetMode(ctx, sr.ModeImport); r[0].Err == nil {
		t.Fatal("IMPORT on a non-empty registry without force")
	}
	if r := cl.SetMode(sr.WithParams(ctx, sr.Force), sr.ModeImport); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if err := cl.DeleteSchema(ctx, "d-value", 1, sr.SoftDelete); err != nil {
		t.Fatal(err)
	}
	c.kill(t)

	c = schemaStartChild(t, dir)
	cl, err = sr.NewClient(sr.URLs(c.url))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := cl.SubjectVersions(ctx, "d-value")
	if err != nil || len(vs) != 1 || vs[0] != 2 {
		t.Fatalf("after second SIGKILL: versions %v %v", vs, err)
	}
	if r := cl.Mode(ctx); r[0].Err != nil || r[0].Mode != sr.ModeImport {
		t.Fatalf("after second SIGKILL: global mode %+v", r[0])
	}
	if r := cl.ResetMode(ctx); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	id3, err := cl.RegisterSchema(ctx, "other", sr.Schema{Schema: schemaUserV2Full}, -1, -1)
	if err != nil || id3 != max(id1, id2)+1 {
		t.Fatalf("next id %d %v, want %d", id3, err, max(id1, id2)+1)
	}
}
