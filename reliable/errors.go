package reliable

import (
	"fmt"
	"net"
	"os"
	"time"
)

// ErrorCode is an error code carried by CLOSE, RESET_STREAM and STOP_SENDING
// frames (docs/PROTOCOL.md §9). On the wire it is a varint.
type ErrorCode uint64

// Error codes of docs/PROTOCOL.md §9.
const (
	CodeNoError          ErrorCode = 0
	CodeInternal         ErrorCode = 1
	CodeFlowControl      ErrorCode = 2
	CodeStreamLimit      ErrorCode = 3
	CodeProtocol         ErrorCode = 4
	CodeIdleTimeout      ErrorCode = 5 // local only: never sent in a CLOSE frame
	CodeApplication      ErrorCode = 6
	CodeRefused          ErrorCode = 7     // the listener refused the session (busy or closing)
	CodeHandshake        ErrorCode = 8     // the TLS handshake failed; the reason names why (docs/PROTOCOL.md §5.6)
	CodeFirstApplication ErrorCode = 0x100 // codes from here on belong to applications
)

// String returns the code's name from docs/PROTOCOL.md §9: "protocol
// violation", "application error" for codes from CodeFirstApplication on,
// "reserved" for the codes between.
func (c ErrorCode) String() string {
	switch c {
	case CodeNoError:
		return "no error"
	case CodeInternal:
		return "internal error"
	case CodeFlowControl:
		return "flow-control violation"
	case CodeStreamLimit:
		return "stream limit exceeded"
	case CodeProtocol:
		return "protocol violation"
	case CodeIdleTimeout:
		return "idle timeout"
	case CodeApplication:
		return "application close"
	case CodeRefused:
		return "session refused"
	case CodeHandshake:
		return "TLS handshake failed"
	}
	if c >= CodeFirstApplication {
		return "application error"
	}
	return "reserved"
}

// SessionError ends a session: who closed it, with which code and why.
type SessionError struct {
	Code   ErrorCode
	Remote bool // the peer sent it
	Reason string
}

func (e *SessionError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	return fmt.Sprintf("raptor: session closed by %s: code %d (%s): %s", who, uint64(e.Code), e.Code, e.Reason)
}

// Is makes errors.Is(err, net.ErrClosed) true for a session closed without
// error, so callers that treat a closed connection as EOF keep working.
func (e *SessionError) Is(target error) bool {
	return target == net.ErrClosed && e.Code == CodeNoError
}

// StreamError reports a stream that the peer reset or asked to stop.
type StreamError struct {
	StreamID uint64
	Code     ErrorCode
	Remote   bool
	Op       string // "reset" or "stop sending"
}

func (e *StreamError) Error() string {
	who := "local"
	if e.Remote {
		who = "peer"
	}
	return fmt.Sprintf("raptor: stream %d: %s by %s with code %d (%s)", e.StreamID, e.Op, who, uint64(e.Code), e.Code)
}

// timeoutError is returned when a deadline passes; it is a net.Error with
// Timeout() true and unwraps to os.ErrDeadlineExceeded.
type timeoutError struct{ op string }

func (e *timeoutError) Error() string   { return "raptor: " + e.op + ": i/o timeout" }
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Unwrap() error   { return os.ErrDeadlineExceeded }

// HandshakeTimeoutError is returned by Dial when the peer did not complete the
// handshake in time.
type HandshakeTimeoutError struct {
	Remote string
	After  time.Duration
}

func (e *HandshakeTimeoutError) Error() string {
	return fmt.Sprintf("raptor: handshake with %s timed out after %v", e.Remote, e.After)
}

// Timeout reports true: this is a net.Error timeout.
func (e *HandshakeTimeoutError) Timeout() bool { return true }

// Temporary reports true.
func (e *HandshakeTimeoutError) Temporary() bool { return true }

// Unwrap returns os.ErrDeadlineExceeded.
func (e *HandshakeTimeoutError) Unwrap() error { return os.ErrDeadlineExceeded }

// errStreamClosed is returned by operations on a stream closed locally.
var errStreamClosed = fmt.Errorf("raptor: use of closed stream: %w", net.ErrClosed)

// errWriteClosed is returned by Write after CloseWrite.
var errWriteClosed = fmt.Errorf("raptor: write after CloseWrite: %w", net.ErrClosed)

// ErrListenerClosed is returned by Accept after Close.
var ErrListenerClosed = fmt.Errorf("raptor: listener closed: %w", net.ErrClosed)
