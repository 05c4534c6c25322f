package benchkit

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/metrics"
	"time"
)

// Freshener is implemented by transports whose Dial shares state between
// conns (raptor: one session per remote address): Fresh returns an
// instance that shares nothing, so that each idle conn has a session of its
// own.
type Freshener interface {
	Fresh() Transport
}

// IdleOptions shape the idle suite.
type IdleOptions struct {
	// Conns is the number of conns (sessions) opened and left idle
	// (default 100).
	Conns int
	// Duration is how long they idle while CPU time is measured
	// (default 2s).
	Duration time.Duration
}

func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}

// RunIdle opens o.Conns conns over t to a server in this process, makes one
// round trip on each, then leaves them idle for o.Duration and reports the
// process CPU time spent meanwhile (IdleCPUPct, percent of one core) and the
// live heap per conn, both ends counted (IdleBytesPerConn).
func RunIdle(ctx context.Context, t Transport, o IdleOptions) (Result, error) {
	if o.Conns == 0 {
		o.Conns = 100
	}
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	res := Result{Suite: SuiteIdle, Transport: t.Name(), Size: minSize}
	s, err := StartServer(ctx, t, "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	defer s.Close()
	base := heapBytes()
	var conns []net.Conn
	var closers []io.Closer
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		for _, c := range closers {
			c.Close()
		}
	}()
	req := make([]byte, minSize)
	resp := make([]byte, minSize)
	for i := 0; i < o.Conns; i++ {
		tr := t
		if f, ok := t.(Freshener); ok {
			tr = f.Fresh()
			if c, ok := tr.(io.Closer); ok {
				closers = append(closers, c)
			}
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := tr.Dial(dctx, s.Addr())
		cancel()
		if err != nil {
			return res, fmt.Errorf("bench: %s idle: dial %d of %d: %w", t.Name(), i+1, o.Conns, err)
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(appendHello(nil, modeEcho, minSize, minSize)); err != nil {
			return res, fmt.Errorf("bench: %s idle: hello %d: %w", t.Name(), i+1, err)
		}
		if _, err := c.Write(req); err != nil {
			return res, fmt.Errorf("bench: %s idle: write %d: %w", t.Name(), i+1, err)
		}
		res.Sent++
		if _, err := io.ReadFull(c, resp); err != nil {
			return res, fmt.Errorf("bench: %s idle: read %d: %w", t.Name(), i+1, err)
		}
		res.Received++
		c.SetDeadline(time.Time{})
	}
	// Let handshakes, delayed ACKs and flush timers settle first.
	settle := time.NewTimer(200 * time.Millisecond)
	select {
	case <-ctx.Done():
		settle.Stop()
		return res, ctx.Err()
	case <-settle.C:
	}
	before := sampleCost()
	idle := time.NewTimer(o.Duration)
	select {
	case <-ctx.Done():
		idle.Stop()
		return res, ctx.Err()
	case <-idle.C:
	}
	after := sampleCost()
	res.Elapsed = o.Duration
	res.IdleCPUPct = 100 * (after.cpu - before.cpu).Seconds() / o.Duration.Seconds()
	if h := heapBytes(); h > base {
		res.IdleBytesPerConn = float64(h-base) / float64(o.Conns)
	}
	runtime.KeepAlive(conns)
	return res, nil
}

// WriteIdleMarkdown writes the idle results as a Markdown table.
func WriteIdleMarkdown(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| transport | idle conns | CPU while idle (% of a core) | live heap per conn, both ends (KiB) |")
	fmt.Fprintln(w, "|---|--:|--:|--:|")
	for _, r := range rs {
		if r.Suite != SuiteIdle {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.3f | %.1f |\n", r.Transport, r.Sent, r.IdleCPUPct, r.IdleBytesPerConn/1024)
	}
}
