package plugin

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// URL schemes understood by [ParseEndpoint] and [Transport].
const (
	SchemeTCP        = "tcp"         // TCP through the standard library
	SchemeRaptor     = "raptor"      // Raptor over kernel UDP (package reliable)
	SchemeRaptorDPDK = "raptor+dpdk" // Raptor over DPDK (build with -tags dpdk)
)

// AcceptedSchemes lists the schemes this package understands, in the order
// error messages name them.
var AcceptedSchemes = []string{SchemeTCP, SchemeRaptor, SchemeRaptorDPDK}

func acceptedList() string {
	parts := make([]string, len(AcceptedSchemes))
	for i, s := range AcceptedSchemes {
		parts[i] = s + "://"
	}
	return strings.Join(parts, ", ")
}

// Endpoint is a parsed transport URL of the form scheme://host:port.
type Endpoint struct {
	// Scheme is one of SchemeTCP, SchemeRaptor or SchemeRaptorDPDK, lower case.
	Scheme string
	// Addr is host:port as accepted by net.SplitHostPort; IPv6 hosts are in
	// brackets. The port is a number from 0 to 65535.
	Addr string
	// RawQuery is the URL query, without "?". Only raptor+dpdk:// takes one
	// (its keys are in docs/DPDK.md, "URL form"); it is "" otherwise.
	RawQuery string
}

// String returns the endpoint as a URL.
func (e Endpoint) String() string {
	if e.RawQuery != "" {
		return e.Scheme + "://" + e.Addr + "?" + e.RawQuery
	}
	return e.Scheme + "://" + e.Addr
}

// SchemeError reports a URL whose scheme is missing or not one of
// [AcceptedSchemes]. Its message names the accepted schemes.
type SchemeError struct {
	Input  string // the URL as given
	Scheme string // the scheme found, "" when there was none
}

// Error names the input and the accepted schemes.
func (e *SchemeError) Error() string {
	if e.Scheme == "" {
		return fmt.Sprintf("plugin: endpoint %q has no scheme; accepted schemes: %s (for example raptor://127.0.0.1:9092)", e.Input, acceptedList())
	}
	return fmt.Sprintf("plugin: endpoint %q has unsupported scheme %q; accepted schemes: %s", e.Input, e.Scheme, acceptedList())
}

// AddrError reports a URL whose scheme is fine but whose host:port is not.
type AddrError struct {
	Input  string // the URL as given
	Reason string // what is wrong with it
}

// Error names the input and what is wrong with it.
func (e *AddrError) Error() string {
	return fmt.Sprintf("plugin: endpoint %q: %s (want scheme://host:port)", e.Input, e.Reason)
}

// ParseEndpoint parses scheme://host:port. The scheme is matched without
// regard to case; a trailing "/" is allowed; paths, fragments and user
// information are not, and only raptor+dpdk:// takes a query. A missing or unknown scheme is a *[SchemeError],
// a bad host:port an *[AddrError].
func ParseEndpoint(s string) (Endpoint, error) {
	i := strings.Index(s, "://")
	if i < 0 {
		return Endpoint{}, &SchemeError{Input: s}
	}
	scheme := strings.ToLower(s[:i])
	known := false
	for _, a := range AcceptedSchemes {
		if scheme == a {
			known = true
			break
		}
	}
	if !known {
		return Endpoint{}, &SchemeError{Input: s, Scheme: s[:i]}
	}
	rest, query, hasQuery := strings.Cut(s[i+3:], "?")
	if hasQuery {
		if scheme != SchemeRaptorDPDK {
			return Endpoint{}, &AddrError{Input: s, Reason: "only raptor+dpdk:// takes a query"}
		}
		if strings.ContainsAny(query, "# \t\r\n") {
			return Endpoint{}, &AddrError{Input: s, Reason: "malformed query"}
		}
		if _, err := url.ParseQuery(query); err != nil {
			return Endpoint{}, &AddrError{Input: s, Reason: "malformed query: " + err.Error()}
		}
	}
	rest = strings.TrimSuffix(rest, "/")
	if j := strings.IndexAny(rest, "/?#@ \t\r\n"); j >= 0 {
		return Endpoint{}, &AddrError{Input: s, Reason: fmt.Sprintf("unexpected %q after host:port", rest[j:j+1])}
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return Endpoint{}, &AddrError{Input: s, Reason: "missing or malformed host:port"}
	}
	if strings.ContainsAny(host, "[]") {
		return Endpoint{}, &AddrError{Input: s, Reason: "malformed host " + strconv.Quote(host)}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port == "" || (len(port) > 1 && port[0] == '0') {
		return Endpoint{}, &AddrError{Input: s, Reason: "port " + strconv.Quote(port) + " is not a number from 0 to 65535"}
	}
	return Endpoint{Scheme: scheme, Addr: net.JoinHostPort(host, strconv.FormatUint(p, 10)), RawQuery: query}, nil
}
