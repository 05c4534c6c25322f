package plugin

import (
	"errors"
	"fmt"
)

// DialError reports a failed dial to one endpoint.
type DialError struct {
	Endpoint string // the endpoint URL
	Err      error  // the cause
}

func (e *DialError) Error() string { return fmt.Sprintf("plugin: dial %s: %v", e.Endpoint, e.Err) }

// Unwrap returns the cause.
func (e *DialError) Unwrap() error { return e.Err }

// ListenError reports a failed listen on one endpoint.
type ListenError struct {
	Endpoint string // the endpoint URL
	Err      error  // the cause
}

func (e *ListenError) Error() string { return fmt.Sprintf("plugin: listen %s: %v", e.Endpoint, e.Err) }

// Unwrap returns the cause.
func (e *ListenError) Unwrap() error { return e.Err }

// ErrDPDKUnavailable is wrapped by the error of a raptor+dpdk:// endpoint in
// a build without DPDK support.
var ErrDPDKUnavailable = errors.New("scheme raptor+dpdk requires a build with -tags dpdk (and libdpdk-dev); see docs/KAFKA.md")

func errDPDK(ep Endpoint) error {
	return fmt.Errorf("plugin: endpoint %s: %w", ep, ErrDPDKUnavailable)
}
