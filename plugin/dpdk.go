package plugin

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/raptormq/raptor/dpdk"
)

// ErrDPDKUnavailable is wrapped by the error of a raptor+dpdk:// endpoint in
// a binary built without DPDK support (build with -tags dpdk, cgo, on Linux,
// with libdpdk-dev). It is dpdk.ErrNotBuilt.
var ErrDPDKUnavailable = dpdk.ErrNotBuilt

// ParamError reports a raptor+dpdk:// query key that is unknown, missing or
// has a bad value.
type ParamError struct {
	Endpoint string // the endpoint URL
	Key      string // the query key
	Value    string // the value given, "" when missing
	Reason   string
}

// Error names the endpoint, the key and its value.
func (e *ParamError) Error() string {
	return fmt.Sprintf("plugin: endpoint %s: %s=%q: %s (see docs/DPDK.md, URL form)", e.Endpoint, e.Key, e.Value, e.Reason)
}

// DPDKConfig maps a raptor+dpdk:// endpoint onto a dpdk.Config
// (docs/DPDK.md, URL form; the query is read by dpdk.ParseQuery). To listen,
// host:port is the port's LocalAddr; to dial (forDial), host:port is the
// remote, returned as raddr, and the local key gives LocalAddr. Hosts are
// IPv4 literals. It checks the URL's syntax; dpdk.Open checks the rest.
func DPDKConfig(ep Endpoint, forDial bool) (cfg dpdk.Config, raddr netip.AddrPort, err error) {
	name := ep.String()
	if ep.Scheme != SchemeRaptorDPDK {
		return cfg, raddr, &SchemeError{Input: name, Scheme: ep.Scheme}
	}
	host, err := netip.ParseAddrPort(ep.Addr)
	if err != nil || !host.Addr().Unmap().Is4() {
		return cfg, raddr, &AddrError{Input: name, Reason: "raptor+dpdk needs an IPv4 address literal and port"}
	}
	cfg, err = dpdk.ParseQuery(ep.RawQuery)
	var qe *dpdk.QueryError
	switch {
	case errors.As(err, &qe) && qe.Key == "":
		return cfg, raddr, &AddrError{Input: name, Reason: qe.Reason}
	case errors.As(err, &qe):
		return cfg, raddr, &ParamError{Endpoint: name, Key: qe.Key, Value: qe.Value, Reason: qe.Reason}
	case err != nil:
		return cfg, raddr, err
	}
	if !forDial {
		cfg.LocalAddr = host // the local key names a dialer's side only
		return cfg, raddr, nil
	}
	if !cfg.LocalAddr.IsValid() {
		return cfg, raddr, &ParamError{Endpoint: name, Key: "local", Reason: "required to dial: this side's IPv4 ip:port on the DPDK port"}
	}
	return cfg, host, nil
}

// dpdkConfig is DPDKConfig for a port this binary is about to open: it
// fails first, with dpdk.ErrNotBuilt, in a build without DPDK support.
func dpdkConfig(ep Endpoint, forDial bool, o *options) (dpdk.Config, netip.AddrPort, error) {
	if !dpdk.Built {
		return dpdk.Config{}, netip.AddrPort{}, fmt.Errorf("plugin: endpoint %s: scheme raptor+dpdk: %w", ep, dpdk.ErrNotBuilt)
	}
	cfg, raddr, err := DPDKConfig(ep, forDial)
	cfg.Logger = o.logger
	return cfg, raddr, err
}

// openDPDK opens the DPDK port for ep.
func openDPDK(ep Endpoint, forDial bool, o *options) (*dpdk.Port, error) {
	cfg, _, err := dpdkConfig(ep, forDial, o)
	if err != nil {
		return nil, err
	}
	p, err := dpdk.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("plugin: endpoint %s: %w", ep, err)
	}
	return p, nil
}
