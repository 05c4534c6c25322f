package benchkit

import "github.com/raptormq/raptor/reliable"

func init() { builtin = append(builtin, newRaptorPlaintext()) }

// RaptorPlaintext is Raptor with reliable.Config.InsecurePlaintext on both
// sides: the TLS handshake runs, but packets are neither encrypted nor
// authenticated. It exists to measure what packet protection costs; never
// use the mode on a network you do not trust.
type RaptorPlaintext struct{ Raptor }

func newRaptorPlaintext() *RaptorPlaintext {
	return &RaptorPlaintext{Raptor{Config: &reliable.Config{InsecurePlaintext: true}}}
}

// Name returns "raptor-plaintext".
func (*RaptorPlaintext) Name() string { return "raptor-plaintext" }

// Fresh returns a new, unused RaptorPlaintext.
func (*RaptorPlaintext) Fresh() Transport { return newRaptorPlaintext() }
