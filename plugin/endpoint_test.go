package plugin

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      string // substring; "" means success
	}{
		{"tcp://127.0.0.1:9092", "tcp://127.0.0.1:9092", ""},
		{"RAPTOR://localhost:1/", "raptor://localhost:1", ""},
		{"raptor://[::1]:9092", "raptor://[::1]:9092", ""},
		{"raptor://:9092", "raptor://:9092", ""},
		{"raptor+dpdk://10.0.0.2:9092", "raptor+dpdk://10.0.0.2:9092", ""},
		{"raptor+dpdk://10.0.0.2:9092?dev=net_ring0", "raptor+dpdk://10.0.0.2:9092?dev=net_ring0", ""},
		{"127.0.0.1:9092", "", "has no scheme; accepted schemes: tcp://, raptor://, raptor+dpdk://"},
		{"udp://127.0.0.1:9092", "", `unsupported scheme "udp"; accepted schemes: tcp://, raptor://, raptor+dpdk://`},
		{"http://x:1", "", "accepted schemes"},
		{"raptor://host", "", "malformed host:port"},
		{"raptor://host:99999", "", "not a number from 0 to 65535"},
		{"raptor://host:09", "", "not a number"},
		{"raptor://host:-1", "", "not a number"},
		{"raptor://host:1/path", "", `unexpected "/"`},
		{"raptor://u@host:1", "", `unexpected "@"`},
		{"raptor://host:1?x=1", "", "only raptor+dpdk:// takes a query"},
		{"raptor+dpdk://10.0.0.1:1?dev=a%zz", "", "malformed query"},
		{"raptor://", "", "malformed"},
	} {
		ep, err := ParseEndpoint(tc.in)
		if tc.err == "" {
			if err != nil || ep.String() != tc.want {
				t.Errorf("ParseEndpoint(%q) = %v, %v; want %s", tc.in, ep, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.in) {
			t.Errorf("ParseEndpoint(%q) error = %v; want one naming the input and containing %q", tc.in, err, tc.err)
		}
	}
	var se *SchemeError
	if _, err := ParseEndpoint("kafka://h:1"); !errors.As(err, &se) || se.Scheme != "kafka" {
		t.Errorf("want *SchemeError with scheme kafka, got %v", err)
	}
	var ae *AddrError
	if _, err := ParseEndpoint("tcp://h"); !errors.As(err, &ae) {
		t.Errorf("want *AddrError, got %v", err)
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:9092", "raptor://[::1]:1", "raptor+dpdk://h:0/", "x://", "raptor://a:b:c", "://:", "tcp://[fe80::1%eth0]:80", "raptor+dpdk://10.0.0.1:4000?dev=net_ring0&mtu=1500", "raptor://h:1?x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseEndpoint(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		again, err := ParseEndpoint(ep.String())
		if err != nil || again != ep {
			t.Fatalf("%q parsed to %v, which re-parses to %v, %v", s, ep, again, err)
		}
	})
}
