package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

func schemaRecT(fields string) string {
	return `{"type":"record","name":"T","namespace":"c","fields":[` + fields + `]}`
}

// TestSchemaCompatibilityLevelsOverHTTP registers three versions under each
// of the seven levels through franz-go's client: the third is compatible with
// the second but not with the first, so the transitive levels answer 409
// where their plain forms accept.
func TestSchemaCompatibilityLevelsOverHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := schemaStartRegistry(t)
	const (
		a      = `{"name":"a","type":"int"}`
		bDef   = `{"name":"b","type":"string","default":"d"}`
		bNoDef = `{"name":"b","type":"string"}`
	)
	chains := []struct {
		name       string
		v1, v2, v3 string
		accept     map[sr.CompatibilityLevel]bool
	}{
		{"backward chain", schemaRecT(a), schemaRecT(a + "," + bDef), schemaRecT(a + "," + bNoDef), map[sr.CompatibilityLevel]bool{
			sr.CompatBackward: true, sr.CompatBackwardTransitive: false, sr.CompatForward: true, sr.CompatForwardTransitive: true,
			sr.CompatFull: true, sr.CompatFullTransitive: false, sr.CompatNone: true}},
		{"forward chain", schemaRecT(a + "," + bNoDef), schemaRecT(a + "," + bDef), schemaRecT(a), map[sr.CompatibilityLevel]bool{
			sr.CompatBackward: true, sr.CompatBackwardTransitive: true, sr.CompatForward: true, sr.CompatForwardTransitive: false,
			sr.CompatFull: true, sr.CompatFullTransitive: false, sr.CompatNone: true}},
	}
	for ci, c := range chains {
		for level, accept := range c.accept {
			subject := fmt.Sprintf("chain%d-%s", ci, level)
			t.Run(c.name+"/"+level.String(), func(t *testing.T) {
				if r := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: level}, subject); r[0].Err != nil {
					t.Fatal(r[0].Err)
				}
				for _, s := range []string{c.v1, c.v2} {
					if _, err := cl.RegisterSchema(ctx, subject, sr.Schema{Schema: s}, -1, -1); err != nil {
						t.Fatalf("register: %v", err)
					}
				}
				check, err := cl.CheckCompatibility(ctx, subject, -1, sr.Schema{Schema: c.v3})
				if err != nil || check.Is != accept {
					t.Fatalf("check: %+v %v, want %v", check, err, accept)
				}
				_, err = cl.RegisterSchema(ctx, subject, sr.Schema{Schema: c.v3}, -1, -1)
				var re *sr.ResponseError
				switch {
				case accept && err != nil:
					t.Fatalf("v3 rejected: %v", err)
				case !accept && (!errors.As(err, &re) || re.ErrorCode != 409):
					t.Fatalf("v3 not rejected with 409: %v", err)
				}
			})
		}
	}
}
