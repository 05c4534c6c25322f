package plugin

import "fmt"

// DialError reports a failed dial to one endpoint.
type DialError struct {
	Endpoint string // the endpoint URL
	Err      error  // the cause
}

// Error names the endpoint and the cause.
func (e *DialError) Error() string { return fmt.Sprintf("plugin: dial %s: %v", e.Endpoint, e.Err) }

// Unwrap returns the cause.
func (e *DialError) Unwrap() error { return e.Err }

// ListenError reports a failed listen on one endpoint.
type ListenError struct {
	Endpoint string // the endpoint URL
	Err      error  // the cause
}

// Error names the endpoint and the cause.
func (e *ListenError) Error() string { return fmt.Sprintf("plugin: listen %s: %v", e.Endpoint, e.Err) }

// Unwrap returns the cause.
func (e *ListenError) Unwrap() error { return e.Err }
