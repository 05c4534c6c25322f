package kafka

import (
	"crypto/tls"

	"github.com/raptormq/raptor/reliable"
)

// WithTLS sets the TLS 1.3 configuration of the Dialer's raptor://
// sessions: RootCAs and ServerName to verify the broker (or gateway), and
// Certificates for mutual TLS (docs/PROTOCOL.md §5.7). Ignored with
// WithTransport. WithTLS and WithPinnedSHA256 replace a reliable.Config
// given through WithTransportOptions(plugin.WithRaptorConfig(...)): to tune
// other fields too, set TLS in that Config instead. Default: none, so the
// server must be authenticated by WithPinnedSHA256 (or be a listener of this
// process).
func WithTLS(tc *tls.Config) DialerOption {
	return func(c *dialerConfig) { c.raptor().TLS = tc }
}

// WithPinnedSHA256 authenticates raptor:// servers by the SHA-256 of their
// certificate, as `raptor broker` and `raptor gateway` print it, instead of a
// certificate chain. Ignored with WithTransport. Default: none.
func WithPinnedSHA256(sum []byte) DialerOption {
	return func(c *dialerConfig) { c.raptor().PinnedSHA256 = sum }
}

// raptor returns the reliable.Config the TLS options fill in.
func (c *dialerConfig) raptor() *reliable.Config {
	if c.raptorCfg == nil {
		c.raptorCfg = &reliable.Config{}
	}
	return c.raptorCfg
}
