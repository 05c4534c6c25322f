package plugin

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// deadAddr returns a loopback TCP address nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestFailoverSkipsDeadEndpointAndReadmitsIt(t *testing.T) {
	live := echoServer(t)
	dead := deadAddr(t)
	tr := New()
	defer tr.Close()
	changes := make(chan gobreaker.State, 16)
	f, err := NewFailoverDialer(tr, []string{"tcp://" + dead, "tcp://" + live.Addr().String()}, FailoverConfig{
		FailureThreshold: 2,
		OpenTimeout:      500 * time.Millisecond, // long enough that the status below still sees it open on a loaded machine
		DialTimeout:      time.Second,
		OnStateChange: func(ep string, _, to gobreaker.State) {
			if ep == "tcp://"+dead {
				changes <- to
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := 0; i < 6; i++ {
		c, err := f.Dial(ctx)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		roundTrip(t, c, "ping")
		c.Close()
	}
	if got := <-changes; got != gobreaker.StateOpen {
		t.Fatalf("dead endpoint breaker went to %v, want open", got)
	}
	st := f.Status()
	if st[0].State != "open" || st[0].Failures != 2 || st[1].State != "closed" || st[1].Active != 0 {
		t.Fatalf("status %+v", st)
	}
	// Bring the dead endpoint back; after OpenTimeout its probe succeeds.
	back, err := net.Listen("tcp", dead)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", dead, err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	timeout := time.After(10 * time.Second)
	for f.Status()[0].State != "half-open" {
		select {
		case <-timeout:
			t.Fatal("breaker never half-opened")
		case <-time.After(5 * time.Millisecond):
		}
	}
	c, err := f.Dial(ctx) // the probe
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if s := f.Status()[0].State; s != "closed" {
		t.Fatalf("after successful probe: %s", s)
	}
}

func TestFailoverSpreadsAcrossHealthy(t *testing.T) {
	a, b := echoServer(t), echoServer(t)
	tr := New()
	defer tr.Close()
	f, err := NewFailoverDialer(tr, []string{"tcp://" + a.Addr().String(), "tcp://" + b.Addr().String()}, FailoverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for i := 0; i < 6; i++ {
		c, err := f.Dial(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	st := f.Status()
	if st[0].Active != 3 || st[1].Active != 3 {
		t.Fatalf("not spread: %+v", st)
	}
	for _, c := range conns {
		c.Close()
		c.Close()
	}
	if st := f.Status(); st[0].Active != 0 || st[1].Active != 0 {
		t.Fatalf("active after close: %+v", st)
	}
}

func TestFailoverAllDead(t *testing.T) {
	tr := New()
	defer tr.Close()
	d1, d2 := deadAddr(t), deadAddr(t)
	f, err := NewFailoverDialer(tr, []string{"tcp://" + d1, "tcp://" + d2}, FailoverConfig{FailureThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		_, err = f.Dial(t.Context())
		var fe *FailoverError
		if !errors.As(err, &fe) || len(fe.Attempts) != 2 {
			t.Fatalf("dial %d: %v", i, err)
		}
	}
	// Second round: both breakers are open, so nothing was dialed.
	if !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("want open-state error, got %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := NewFailoverDialer(tr, nil, FailoverConfig{}); err == nil {
		t.Fatal("empty endpoint list accepted")
	}
	_ = ctx
}
