//go:build raptor_stub

package plugin

import (
	"context"
	"errors"
	"net"
)

// Temporary stand-in while package reliable is being written: build with
// -tags raptor_stub to test the TCP paths alone.

type raptorOptions struct{}

type raptorTransport struct{}

func newRaptorTransport(*options) *raptorTransport { return &raptorTransport{} }

var errStub = errors.New("plugin: built with -tags raptor_stub: raptor:// unavailable")

func (rt *raptorTransport) dial(context.Context, Endpoint) (net.Conn, error) { return nil, errStub }
func (rt *raptorTransport) listen(Endpoint) (net.Listener, error)          { return nil, errStub }
func (rt *raptorTransport) close() error                                   { return nil }
