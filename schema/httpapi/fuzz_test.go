package httpapi

import (
	"slices"
	"testing"
)

// FuzzNegotiate: any Accept header picks one of the produced media types or
// none (406), and a header naming exactly one of them picks it.
func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "*/*", "application/json", ContentType + ";q=0.5, application/json", "text/html", "application/*;q=0", "a/b;q=x, */*;q=0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		mt, ok := negotiate([]string{accept})
		if ok != (mt != "") || ok && !slices.Contains(produces, mt) {
			t.Fatalf("Accept %q: %q %v", accept, mt, ok)
		}
		for _, p := range produces {
			if got, ok := negotiate([]string{p}); !ok || got != p {
				t.Fatalf("Accept %q gives %q %v", p, got, ok)
			}
		}
	})
}
