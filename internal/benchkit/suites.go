package benchkit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Options bound and shape one run of a suite. Zero values mean the defaults
// documented on each field.
type Options struct {
	// Size is the message (request) size in bytes; default 64, at least 16.
	Size int
	// Reply is the rtt reply size; default Size.
	Reply int
	// Count is the number of rtt round trips measured after warm-up
	// (default 20000), or of kafka records at the fixed rate (default 5000).
	Count int
	// MaxMessages bounds the messages of one throughput run (default 100
	// million).
	MaxMessages int
	// Warmup is the number of unmeasured round trips (or kafka records)
	// first (default 1000; negative means none).
	Warmup int
	// Duration is how long throughput sends (default 3s).
	Duration time.Duration
	// Timeout bounds the whole run (default 45s); an rtt run that reaches it
	// reports what it measured so far.
	Timeout time.Duration
	// LossTimeout is how long a udp round trip waits before it counts the
	// datagram as lost (default 200ms).
	LossTimeout time.Duration
	// Rate is the kafka suite's offered rate in records/s (default 2000).
	Rate int
	// Remote is the address of a `bench serve` server; empty starts a
	// server in this process on loopback.
	Remote string
	// Stall is how long the kafka consumer waits for a missing record once
	// the producer is done, before it reports the record lost (default 5s).
	Stall time.Duration
	// Progress, when not nil, receives a progress bar for runs longer than
	// a second.
	Progress io.Writer

	faults *kafkaFaults // tests only: records the kafka producer loses or repeats
}

// kafkaFaults injects faults into the kafka producer of a test, so that the
// tests see the counting report them: record drop is counted as produced and
// never sent; record dup is produced once more after the last one. -1 is
// none.
type kafkaFaults struct{ drop, dup int64 }

func (o Options) withDefaults() Options {
	if o.Size == 0 {
		o.Size = 64
	}
	if o.Reply == 0 {
		o.Reply = o.Size
	}
	if o.Count == 0 {
		o.Count = 20000
	}
	if o.Warmup == 0 {
		o.Warmup = 1000
	} else if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.MaxMessages == 0 {
		o.MaxMessages = 100_000_000
	}
	if o.Duration == 0 {
		o.Duration = 3 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 45 * time.Second
	}
	if o.LossTimeout == 0 {
		o.LossTimeout = 200 * time.Millisecond
	}
	if o.Stall == 0 {
		o.Stall = 5 * time.Second
	}
	return o
}

// SizeError reports a message size out of the supported range.
type SizeError struct {
	What string
	Size int
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("bench: %s size %d outside [%d, %d] bytes", e.What, e.Size, minSize, maxSize)
}

func (o Options) check() error {
	if o.Size < minSize || o.Size > maxSize {
		return &SizeError{What: "message", Size: o.Size}
	}
	if o.Reply < minSize || o.Reply > maxSize {
		return &SizeError{What: "reply", Size: o.Reply}
	}
	return nil
}

// withServer runs fn against a server for t: the remote one when o.Remote is
// set, else one started here on loopback and closed afterwards.
func withServer(ctx context.Context, t Named, o Options, fn func(addr string) error) error {
	if o.Remote != "" {
		addr, err := RemoteAddr(o.Remote, t.Name())
		if err != nil {
			return err
		}
		return fn(addr)
	}
	s, err := StartServer(ctx, t, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s.Addr())
}

// RemoteAddr maps the base address of a `bench serve` server to the address
// of transport name on it (base port + [PortOffsets]).
func RemoteAddr(base, name string) (string, error) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("bench: remote address %q: %w", base, err)
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p <= 0 || p > 65535-20 {
		return "", fmt.Errorf("bench: remote address %q: port %q is not a number in [1, 65515]", base, port)
	}
	off, ok := PortOffsets[name]
	if !ok {
		off = 10
	}
	return net.JoinHostPort(host, fmt.Sprint(p+off)), nil
}

// cost samples process CPU time, system calls and GC cycles around a
// measurement.
type cost struct {
	cpu      time.Duration
	gcs      uint64
	allocs   uint64 // heap objects allocated, cumulative
	syscalls uint64 // cumulative; 0 without a counter
}

var costSamples = []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/allocs:objects"}}

func sampleCost() cost {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	s := make([]metrics.Sample, len(costSamples))
	copy(s, costSamples)
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	c := cost{cpu: cpu, gcs: u(0), allocs: u(1)}
	if sc, err := ProcessSyscalls(); err == nil {
		c.syscalls = sc.Count()
	}
	return c
}

func (r *Result) setCost(before, after cost) {
	r.GCs = after.gcs - before.gcs
	if r.Received > 0 {
		r.CPUSPerMMsg = (after.cpu - before.cpu).Seconds() / (float64(r.Received) / 1e6)
		r.AllocsPerMsg = float64(after.allocs-before.allocs) / float64(r.Received)
		r.SyscallsPerMsg = float64(after.syscalls-before.syscalls) / float64(r.Received)
	}
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(5*time.Minute), 3) // nanoseconds
}

func (r *Result) setPercentiles(h *hdrhistogram.Histogram) {
	us := func(v int64) float64 { return float64(v) / 1e3 }
	r.P50us = us(h.ValueAtQuantile(50))
	r.P90us = us(h.ValueAtQuantile(90))
	r.P99us = us(h.ValueAtQuantile(99))
	r.P999us = us(h.ValueAtQuantile(99.9))
	r.MaxUs = us(h.Max())
}

// RunRTT measures ping-pong round trips of one message at a time over t.
func RunRTT(ctx context.Context, t Named, o Options) (Result, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res := Result{Suite: SuiteRTT, Transport: t.Name(), Size: o.Size}
	if o.Reply != o.Size {
		res.Reply = o.Reply
	}
	err := withServer(ctx, t, o, func(addr string) error {
		switch t := t.(type) {
		case Transport:
			return rttStream(ctx, t, addr, o, &res)
		case DatagramTransport:
			return rttDatagram(ctx, t, addr, o, &res)
		}
		return nil
	})
	return res, err
}

// connCloser closes c when ctx ends, so that blocked calls return.
func connCloser(ctx context.Context, c io.Closer) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-done:
		}
	}()
	return func() { close(done) }
}

func rttStream(ctx context.Context, t Transport, addr string, o Options, res *Result) error {
	c, err := t.Dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("bench: %s dial %s: %w", t.Name(), addr, err)
	}
	defer c.Close()
	defer connCloser(ctx, c)()
	setNoDelay(c)
	req := make([]byte, o.Size)
	resp := make([]byte, o.Reply)
	if _, err := c.Write(appendHello(nil, modeEcho, o.Size, o.Reply)); err != nil {
		return fmt.Errorf("bench: %s hello: %w", t.Name(), err)
	}
	h := newHist()
	bar := startProgress(o.Progress, fmt.Sprintf("rtt %s %dB", t.Name(), o.Size), float64(o.Warmup+o.Count))
	defer bar.stop()
	before := sampleCost()
	start := time.Now()
	err = nil
	for i := 0; i < o.Warmup+o.Count; i++ {
		if i == o.Warmup {
			h.Reset()
			before = sampleCost()
			start = time.Now()
		}
		binary.BigEndian.PutUint64(req[:8], uint64(i))
		t0 := time.Now()
		if _, err = c.Write(req); err != nil {
			err = fmt.Errorf("bench: %s rtt write %d: %w", t.Name(), i, err)
			break
		}
		if _, err = io.ReadFull(c, resp); err != nil {
			err = fmt.Errorf("bench: %s rtt read %d: %w", t.Name(), i, err)
			break
		}
		d := time.Since(t0)
		if got := binary.BigEndian.Uint64(resp[:8]); got != uint64(i) {
			return fmt.Errorf("bench: %s rtt reply carries sequence %d, want %d", t.Name(), got, i)
		}
		if i >= o.Warmup {
			h.RecordValue(int64(d))
			res.Sent++
			res.Received++
		}
		bar.set(float64(i + 1))
	}
	res.Elapsed = time.Since(start)
	res.setCost(before, sampleCost())
	res.setPercentiles(h)
	if res.Elapsed > 0 {
		res.MsgsPerS = float64(res.Received) / res.Elapsed.Seconds()
	}
	return timeoutOK(ctx, err)
}

// timeoutOK turns an error caused by the run's own time bound into a
// truncated result (nil) and keeps any other error.
func timeoutOK(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func rttDatagram(ctx context.Context, t DatagramTransport, addr string, o Options, res *Result) error {
	c, err := t.DialPacket(ctx, addr)
	if err != nil {
		return fmt.Errorf("bench: %s dial %s: %w", t.Name(), addr, err)
	}
	defer c.Close()
	defer connCloser(ctx, c)()
	req := make([]byte, o.Size)
	resp := make([]byte, 64<<10)
	req[0] = dgEcho
	binary.BigEndian.PutUint32(req[9:13], uint32(o.Reply))
	h := newHist()
	bar := startProgress(o.Progress, fmt.Sprintf("rtt %s %dB", t.Name(), o.Size), float64(o.Warmup+o.Count))
	defer bar.stop()
	before := sampleCost()
	start := time.Now()
	err = nil
	for i := 0; i < o.Warmup+o.Count; i++ {
		if ctx.Err() != nil {
			break
		}
		if i == o.Warmup {
			h.Reset()
			before = sampleCost()
			start = time.Now()
			res.Sent, res.Received = 0, 0
		}
		binary.BigEndian.PutUint64(req[1:9], uint64(i))
		t0 := time.Now()
		c.SetReadDeadline(t0.Add(o.LossTimeout))
		if _, err = c.Write(req); err != nil && !isRefused(err) {
			err = fmt.Errorf("bench: %s rtt write %d: %w", t.Name(), i, err)
			break
		}
		res.Sent++
		for {
			var n int
			n, err = c.Read(resp)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) || isRefused(err) {
					err = nil
					break // lost: counted by Sent - Received
				}
				err = fmt.Errorf("bench: %s rtt read %d: %w", t.Name(), i, err)
				break
			}
			if n >= 9 && resp[0] == dgEchoed && binary.BigEndian.Uint64(resp[1:9]) == uint64(i) {
				if i >= o.Warmup {
					h.RecordValue(int64(time.Since(t0)))
				}
				res.Received++
				break
			}
			// a late reply to an earlier round trip: ignore it
		}
		if err != nil {
			break
		}
		bar.set(float64(i + 1))
	}
	res.Elapsed = time.Since(start)
	res.setCost(before, sampleCost())
	res.setPercentiles(h)
	if res.Sent > 0 {
		res.LossPct = 100 * float64(res.Sent-res.Received) / float64(res.Sent)
	}
	if res.Elapsed > 0 {
		res.MsgsPerS = float64(res.Received) / res.Elapsed.Seconds()
	}
	return timeoutOK(ctx, err)
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// RunThroughput measures a one-way stream of messages over t, each message
// one Write call, counted where they are received.
func RunThroughput(ctx context.Context, t Named, o Options) (Result, error) {
	o = o.withDefaults()
	if err := o.check(); err != nil {
		return Result{}, err
	}
	if o.Timeout < o.Duration+15*time.Second {
		o.Timeout = o.Duration + 15*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res := Result{Suite: SuiteThroughput, Transport: t.Name(), Size: o.Size}
	err := withServer(ctx, t, o, func(addr string) error {
		switch t := t.(type) {
		case Transport:
			return throughputStream(ctx, t, addr, o, &res)
		case DatagramTransport:
			return throughputDatagram(ctx, t, addr, o, &res)
		}
		return nil
	})
	if err == nil && res.Elapsed > 0 {
		res.MsgsPerS = float64(res.Received) / res.Elapsed.Seconds()
		res.MBPerS = res.MsgsPerS * float64(o.Size) / 1e6
	}
	if res.Sent > 0 {
		res.LossPct = 100 * float64(res.Sent-res.Received) / float64(res.Sent)
	}
	return res, err
}

// sendFor writes messages (one Write each) until the duration passes or
// count messages are written, and returns how many were written.
func sendFor(c net.Conn, msg []byte, o Options, bar *progress) (int64, error) {
	var stop atomic.Bool
	tm := time.AfterFunc(o.Duration, func() { stop.Store(true) })
	defer tm.Stop()
	start := time.Now()
	var n int64
	for n < int64(o.MaxMessages) && !stop.Load() {
		if _, err := c.Write(msg); err != nil {
			return n, err
		}
		n++
		if n&1023 == 0 {
			bar.set(time.Since(start).Seconds())
		}
	}
	return n, nil
}

func throughputStream(ctx context.Context, t Transport, addr string, o Options, res *Result) error {
	c, err := t.Dial(ctx, addr)
	if err != nil {
		return fmt.Errorf("bench: %s dial %s: %w", t.Name(), addr, err)
	}
	defer c.Close()
	defer connCloser(ctx, c)()
	setNoDelay(c)
	if _, err := c.Write(appendHello(nil, modeSink, o.Size, 0)); err != nil {
		return fmt.Errorf("bench: %s hello: %w", t.Name(), err)
	}
	msg := make([]byte, o.Size)
	msg[0] = msgData
	bar := startProgress(o.Progress, fmt.Sprintf("throughput %s %dB", t.Name(), o.Size), o.Duration.Seconds())
	before := sampleCost()
	sent, err := sendFor(c, msg, o, bar)
	bar.stop()
	res.Sent = sent
	if err != nil {
		return fmt.Errorf("bench: %s throughput write after %d messages: %w", t.Name(), sent, err)
	}
	msg[0] = msgEnd
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("bench: %s throughput end marker: %w", t.Name(), err)
	}
	var tally [tallyLen]byte
	if _, err := io.ReadFull(c, tally[:]); err != nil {
		return fmt.Errorf("bench: %s throughput tally: %w", t.Name(), err)
	}
	res.setCostRecv(before, sampleCost(), tally[:])
	return nil
}

func (r *Result) setCostRecv(before, after cost, tally []byte) {
	r.Received = int64(binary.BigEndian.Uint64(tally[:8]))
	r.Elapsed = time.Duration(binary.BigEndian.Uint64(tally[8:16]))
	r.setCost(before, after)
}

func throughputDatagram(ctx context.Context, t DatagramTransport, addr string, o Options, res *Result) error {
	c, err := t.DialPacket(ctx, addr)
	if err != nil {
		return fmt.Errorf("bench: %s dial %s: %w", t.Name(), addr, err)
	}
	defer c.Close()
	defer connCloser(ctx, c)()
	// Control exchanges are retried: the path may lose them too.
	exchange := func(typ, want byte, wantLen int) ([]byte, error) {
		out := make([]byte, minSize)
		out[0] = typ
		in := make([]byte, 64<<10)
		for try := 0; try < 50; try++ {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Write(out); err != nil && !isRefused(err) {
				return nil, err
			}
			for {
				n, err := c.Read(in)
				if err != nil {
					break
				}
				if n >= wantLen && in[0] == want {
					return in[:n], nil
				}
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		return nil, fmt.Errorf("bench: %s: no answer to control datagram %q after 50 tries", t.Name(), typ)
	}
	if _, err := exchange(dgStart, dgStarted, minSize); err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{})
	msg := make([]byte, o.Size)
	msg[0] = dgData
	bar := startProgress(o.Progress, fmt.Sprintf("throughput %s %dB", t.Name(), o.Size), o.Duration.Seconds())
	before := sampleCost()
	sent, err := sendFor(&refusedOK{c}, msg, o, bar)
	bar.stop()
	res.Sent = sent
	if err != nil {
		return fmt.Errorf("bench: %s throughput write after %d messages: %w", t.Name(), sent, err)
	}
	tally, err := exchange(dgFinish, dgTally, dgTallyLen)
	if err != nil {
		return err
	}
	res.setCostRecv(before, sampleCost(), tally[1:17])
	return nil
}

// refusedOK ignores ECONNREFUSED on writes (an ICMP error of an earlier
// datagram): the datagram is simply lost.
type refusedOK struct{ net.Conn }

func (r *refusedOK) Write(b []byte) (int, error) {
	n, err := r.Conn.Write(b)
	if err != nil && isRefused(err) {
		return len(b), nil
	}
	return n, err
}
