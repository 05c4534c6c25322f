package benchkit

import (
	"errors"
	"io"
	"testing"
)

func TestViaProxyFlag(t *testing.T) {
	cfg, err := ParseArgs("bench", []string{"kafka", "--transport", "tcp", "--via", "proxy"}, Default(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(cfg.Transports); n != 2 || cfg.Transports[1].Name() != "tcp-proxy-raptor" {
		t.Fatalf("transports %v; want tcp then tcp-proxy-raptor", cfg.Transports)
	}
	for _, args := range [][]string{{"rtt", "--via", "proxy"}, {"kafka", "--via", "gateway"}} {
		var fe *FlagError
		if _, err := ParseArgs("bench", args, Default(), io.Discard); !errors.As(err, &fe) || fe.Flag != "via" {
			t.Errorf("%v: %v; want a FlagError for --via", args, err)
		}
	}
}
