package reliable

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raptormq/raptor/internal/simnet"
)

func TestErrorCodeString(t *testing.T) {
	for _, tc := range []struct {
		code ErrorCode
		want string
	}{
		{CodeNoError, "no error"},
		{CodeInternal, "internal error"},
		{CodeFlowControl, "flow-control violation"},
		{CodeStreamLimit, "stream limit exceeded"},
		{CodeProtocol, "protocol violation"},
		{CodeIdleTimeout, "idle timeout"},
		{CodeApplication, "application close"},
		{CodeRefused, "session refused"},
		{CodeHandshake, "TLS handshake failed"},
		{9, "reserved"},
		{CodeFirstApplication - 1, "reserved"},
		{CodeFirstApplication, "application error"},
		{1 << 62, "application error"},
	} {
		if got := tc.code.String(); got != tc.want {
			t.Errorf("ErrorCode(%d).String() = %q, want %q", uint64(tc.code), got, tc.want)
		}
	}
}

func TestErrorMessagesNameTheCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&SessionError{Code: CodeProtocol, Remote: true, Reason: "bad ACK"}, "session closed by peer: code 4 (protocol violation): bad ACK"},
		{&SessionError{Code: CodeFirstApplication + 1, Reason: "bye"}, "session closed by local: code 257 (application error): bye"},
		{&StreamError{StreamID: 8, Code: CodeApplication, Remote: true, Op: "stop sending"}, "stream 8: stop sending by peer with code 6 (application close)"},
	} {
		if got := tc.err.Error(); !strings.Contains(got, tc.want) {
			t.Errorf("%#v.Error() = %q, want it to contain %q", tc.err, got, tc.want)
		}
	}
	if !errors.Is(&SessionError{Code: CodeNoError}, net.ErrClosed) || errors.Is(&SessionError{Code: CodeApplication}, net.ErrClosed) {
		t.Error("only a code-0 SessionError should match net.ErrClosed")
	}
}

// TestSimCloseStopsPeerWithApplicationCode: closing a stream whose peer is
// still sending asks it to stop with code 6, application close (PROTOCOL §9:
// the code sent when the application gives none).
func TestSimCloseStopsPeerWithApplicationCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw, l, s := simPair(t, 29, simnet.LinkConfig{Delay: time.Millisecond}, nil)
		defer nw.Close()
		a, err := s.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		acc, err := l.AcceptStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acc.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		acc.Close()
		chunk := make([]byte, 64<<10)
		for i := 0; i < 1000 && err == nil; i++ { // 64 MB at most: STOP_SENDING arrives after ~1 ms
			_, err = a.Write(chunk)
		}
		var se *StreamError
		if !errors.As(err, &se) || se.Code != CodeApplication || !se.Remote || se.Op != "stop sending" {
			t.Fatalf("write after the peer closed its stream: %v, want a remote stop sending with code %d", err, CodeApplication)
		}
	})
}
