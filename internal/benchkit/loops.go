package benchkit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raptormq/raptor/reliable"
)

// SuiteLoops names the results of the loops suite.
const SuiteLoops = "loops"

// LoopsOptions shape the loops suite.
type LoopsOptions struct {
	// Sessions is the number of client sessions, each from its own socket
	// (its own 4-tuple) with one stream (default 8).
	Sessions int
	// Loops lists the listener's receive loop counts to run, each compared
	// with the first (default 1, 2).
	Loops []int
	// Settle is how long the senders run before the measurement starts
	// (default 300ms): handshakes done, congestion windows open.
	Settle time.Duration
	// Repeat is how many times the command line runs Loops in turn
	// (1, 2, 1, 2, ...; default 1); WriteLoopsSummary adds medians.
	Repeat int
}

func (lo LoopsOptions) withDefaults() LoopsOptions {
	if lo.Sessions == 0 {
		lo.Sessions = 8
	}
	if len(lo.Loops) == 0 {
		lo.Loops = []int{1, 2}
	}
	if lo.Settle == 0 {
		lo.Settle = 300 * time.Millisecond
	}
	return lo
}

// raptorConfigured is a transport built on package reliable (raptor,
// raptor-plaintext): the loops suite runs its listener and dialers with
// the transport's Config.
type raptorConfigured interface {
	raptorConfig() *reliable.Config
}

func (r *Raptor) raptorConfig() *reliable.Config { return r.Config }

// RunLoops measures one Raptor listener with loops receive loops
// (reliable.Config.ReceiveLoops, SO_REUSEPORT) taking one-way streams of
// o.Size-byte messages from lo.Sessions client sessions at once, each
// writing as fast as it can, for o.Duration after lo.Settle. Messages are
// counted where they are received; CPU and system calls are the whole
// process's (clients and listener share the machine). The result's
// LoopSessions and LoopPackets say how the kernel spread the sessions and
// their packets over the loops. t must be built on package reliable
// (raptor, raptor-plaintext).
//
// Goroutines carry the pprof label side=client or side=server (the
// sessions and receive loops they start inherit it), so a --cpuprofile
// shows which side spent the CPU.
func RunLoops(ctx context.Context, t Named, loops int, o Options, lo LoopsOptions) (Result, error) {
	o = o.withDefaults()
	lo = lo.withDefaults()
	res := Result{Suite: SuiteLoops, Transport: loopsName(t.Name(), loops), Size: o.Size, ReceiveLoops: loops, Sessions: lo.Sessions}
	if err := o.check(); err != nil {
		return res, err
	}
	rc, ok := t.(raptorConfigured)
	if !ok {
		return res, fmt.Errorf("bench: loops measures a Raptor listener's receive loops; %s is not built on package reliable", t.Name())
	}
	if loops < 1 || lo.Sessions < 1 {
		return res, fmt.Errorf("bench: loops: %d receive loops and %d sessions; want at least 1 of each", loops, lo.Sessions)
	}
	if o.Timeout < lo.Settle+o.Duration+15*time.Second {
		o.Timeout = lo.Settle + o.Duration + 15*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var base reliable.Config
	if c := rc.raptorConfig(); c != nil {
		base = *c
	}
	if base.Logger == nil {
		base.Logger = slog.New(slog.DiscardHandler)
	}
	scfg := base
	scfg.ReceiveLoops = loops
	ccfg := base
	ccfg.ReceiveLoops = 0
	if ccfg.TLS == nil && ccfg.PinnedSHA256 == nil {
		ccfg.InsecureSkipServerAuth = true // as Raptor.dialConfig: packets stay protected
	}

	var (
		l        *reliable.Listener
		err      error
		received atomic.Int64 // bytes, all streams
		wg       sync.WaitGroup
		ended    = make(chan struct{}, lo.Sessions) // one per stream read to its end
		arrived  = make(chan struct{}, 1)           // bytes arrived since the last receive from it
	)
	pprof.Do(ctx, pprof.Labels("side", "server"), func(ctx context.Context) {
		l, err = reliable.Listen("127.0.0.1:0", &scfg)
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				st, err := l.AcceptStream(ctx)
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer st.Close()
					buf := make([]byte, 64<<10)
					for {
						n, err := st.Read(buf)
						received.Add(int64(n))
						if n > 0 {
							select {
							case arrived <- struct{}{}:
							default:
							}
						}
						if err == io.EOF {
							ended <- struct{}{}
						}
						if err != nil {
							return
						}
					}
				}()
			}
		}()
	})
	if err != nil {
		return res, fmt.Errorf("bench: loops: listen with %d receive loops: %w", loops, err)
	}
	defer func() {
		cancel()
		l.Close()
		wg.Wait()
	}()

	var (
		stop     atomic.Bool
		sent     atomic.Int64
		sessions []*reliable.Session
		werr     = make(chan error, lo.Sessions)
		writers  sync.WaitGroup
	)
	defer func() {
		stop.Store(true)
		for _, s := range sessions {
			s.CloseWithError(0, "bench done") // unblocks a writer held by flow control
		}
		writers.Wait()
	}()
	pprof.Do(ctx, pprof.Labels("side", "client"), func(ctx context.Context) {
		for i := 0; i < lo.Sessions; i++ {
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			var s *reliable.Session
			s, err = reliable.Dial(dctx, l.Addr().String(), &ccfg)
			if err != nil {
				dcancel()
				err = fmt.Errorf("dial session %d of %d: %w", i+1, lo.Sessions, err)
				return
			}
			sessions = append(sessions, s)
			var st *reliable.Stream
			st, err = s.OpenStream(dctx)
			dcancel()
			if err != nil {
				err = fmt.Errorf("open a stream on session %d of %d: %w", i+1, lo.Sessions, err)
				return
			}
			writers.Add(1)
			go func() {
				defer writers.Done()
				msg := make([]byte, o.Size)
				n := int64(0)
				for ; !stop.Load() && n < int64(o.MaxMessages); n++ {
					if _, err := st.Write(msg); err != nil {
						werr <- fmt.Errorf("session %d: write after %d messages: %w", i+1, n, err)
						return
					}
					sent.Add(1)
				}
				if err := st.CloseWrite(); err != nil {
					werr <- fmt.Errorf("session %d: close after %d messages: %w", i+1, n, err)
				}
			}()
		}
	})
	if err != nil {
		return res, fmt.Errorf("bench: loops (%d receive loops): %w", loops, err)
	}

	bar := startProgress(o.Progress, fmt.Sprintf("loops %s %dB", res.Transport, o.Size), (lo.Settle + o.Duration).Seconds())
	defer bar.stop()
	wait := func(d time.Duration) error {
		tm := time.NewTimer(d)
		defer tm.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-werr:
			return err
		case <-tm.C:
			return nil
		}
	}
	if err := wait(lo.Settle); err != nil {
		return res, fmt.Errorf("bench: loops (%d receive loops) settling: %w", loops, err)
	}
	bar.set(lo.Settle.Seconds())
	counters := func() (st reliable.Stats) {
		st = l.Stats()
		for _, s := range sessions {
			st.Add(s.Stats())
		}
		return st
	}
	perLoop := func() []uint64 {
		var out []uint64
		for _, st := range l.StatsPerLoop() {
			out = append(out, st.Get(reliable.CounterPacketsReceived))
		}
		return out
	}
	c0, pk0, bytes0, sent0, before, start := counters(), perLoop(), received.Load(), sent.Load(), sampleCost(), time.Now()
	if err := wait(o.Duration); err != nil {
		return res, fmt.Errorf("bench: loops (%d receive loops): %w", loops, err)
	}
	// A window in which nothing arrived (a stall longer than o.Duration)
	// lasts until something does.
	for received.Load() == bytes0 {
		select {
		case <-arrived:
		case err := <-werr:
			return res, fmt.Errorf("bench: loops (%d receive loops): %w", loops, err)
		case <-ctx.Done():
			return res, fmt.Errorf("bench: loops (%d receive loops): nothing received within the time bound: %w", loops, ctx.Err())
		}
	}
	pk1, bytes1, sent1, after, elapsed, c1 := perLoop(), received.Load(), sent.Load(), sampleCost(), time.Since(start), counters()
	bar.set((lo.Settle + o.Duration).Seconds())

	res.Elapsed = elapsed
	res.Sent = sent1 - sent0
	res.Received = (bytes1 - bytes0) / int64(o.Size)
	res.setCost(before, after)
	res.MsgsPerS = float64(res.Received) / elapsed.Seconds()
	res.MBPerS = res.MsgsPerS * float64(o.Size) / 1e6
	res.LoopSessions = l.SessionsPerLoop()
	d := func(c reliable.Counter) uint64 { return c1.Get(c) - c0.Get(c) }
	res.Notes = fmt.Sprintf("retransmits %d, RTOs %d (spurious %d, held %d), spurious losses %d, undos %d, duplicates %d, packets held over a receive budget %d, at the memory limit %d",
		d(reliable.CounterRetransmits), d(reliable.CounterRTOs), d(reliable.CounterSpuriousRTOs), d(reliable.CounterPTOHolds), d(reliable.CounterSpuriousLosses), d(reliable.CounterUndos),
		d(reliable.CounterDuplicates), d(reliable.CounterLimitReceiveBudget), d(reliable.CounterLimitMemory))
	for i := range pk1 {
		res.LoopPackets = append(res.LoopPackets, pk1[i]-pk0[i])
	}
	// Every stream ends: every message written must arrive.
	stop.Store(true)
	for i := 0; i < lo.Sessions; i++ {
		select {
		case <-ended:
		case err := <-werr:
			return res, fmt.Errorf("bench: loops (%d receive loops) ending: %w", loops, err)
		case <-ctx.Done():
			return res, fmt.Errorf("bench: loops (%d receive loops): %d of %d streams ended before the time bound: %w", loops, i, lo.Sessions, ctx.Err())
		}
	}
	if got, want := received.Load(), sent.Load()*int64(o.Size); got != want {
		return res, fmt.Errorf("bench: loops (%d receive loops): %d bytes received, %d written (%d messages of %d B)", loops, got, want, sent.Load(), o.Size)
	}
	return res, nil
}

// loopsName is the transport column of a loops result.
func loopsName(transport string, loops int) string {
	if loops == 1 {
		return transport + "×1 loop"
	}
	return fmt.Sprintf("%s×%d loops", transport, loops)
}

// WriteLoopsSummary writes, under the table of a loops run, how the kernel
// spread each run's sessions and packets over the receive loops, and each
// run's message rate against the latest run before it with the first loop
// count of the same transport and size (the aim of issue 16: 2 loops ≥ 1.6×
// one). When a loop count ran more than once (--repeat), it adds the
// medians: msgs/s, CPU µs/msg and the ratio of each pair.
func WriteLoopsSummary(w io.Writer, rs []Result) {
	type key struct {
		transport string
		size      int
	}
	type group struct {
		key
		loops int
	}
	var (
		base    = map[key]int{}    // the first loop count of each transport and size
		ref     = map[key]Result{} // the latest run with it
		order   []group
		runs    = map[group][]Result{}
		ratios  = map[group][]float64{}
		head    bool
		repeats bool
	)
	for _, r := range rs {
		if r.Suite != SuiteLoops {
			continue
		}
		k := key{strings.SplitN(r.Transport, "×", 2)[0], r.Size}
		if _, ok := base[k]; !ok {
			base[k] = r.ReceiveLoops
		}
		g := group{k, r.ReceiveLoops}
		if _, ok := runs[g]; !ok {
			order = append(order, g)
		}
		runs[g] = append(runs[g], r)
		repeats = repeats || len(runs[g]) > 1
		var pk []string
		var total uint64
		for _, p := range r.LoopPackets {
			total += p
		}
		for _, p := range r.LoopPackets {
			share := 0.0
			if total > 0 {
				share = 100 * float64(p) / float64(total)
			}
			pk = append(pk, fmt.Sprintf("%.0f%%", share))
		}
		cores := r.MsgsPerS * r.CPUSPerMMsg / 1e6 // CPU seconds per second
		line := fmt.Sprintf("%s %d B, %d sessions: sessions per loop %v, packets received per loop [%s], process busy %.2f cores",
			r.Transport, r.Size, r.Sessions, r.LoopSessions, strings.Join(pk, " "), cores)
		if r.ReceiveLoops == base[k] {
			ref[k] = r
		} else if f, ok := ref[k]; ok && f.MsgsPerS > 0 {
			ratios[g] = append(ratios[g], r.MsgsPerS/f.MsgsPerS)
			line += fmt.Sprintf("; %.2f× the msgs/s of %d loop(s), %.2f× the CPU µs/msg", r.MsgsPerS/f.MsgsPerS, f.ReceiveLoops, ratioOrZero(r.CPUSPerMMsg, f.CPUSPerMMsg))
		}
		if r.Notes != "" {
			line += "; " + r.Notes
		}
		if !head {
			fmt.Fprintln(w)
			head = true
		}
		fmt.Fprintln(w, line)
	}
	if !repeats {
		return
	}
	fmt.Fprintln(w)
	for _, g := range order {
		var mps, cpu []float64
		for _, r := range runs[g] {
			mps = append(mps, r.MsgsPerS)
			cpu = append(cpu, r.CPUSPerMMsg)
		}
		line := fmt.Sprintf("median of %d: %s×%d %d B: %s msgs/s, %s MB/s, %s CPU µs/msg", len(mps), g.transport, g.loops, g.size,
			fmtNum(median(mps)), fmtNum(median(mps)*float64(g.size)/1e6), fmtNum(median(cpu)))
		if rt := ratios[g]; len(rt) > 0 {
			line += fmt.Sprintf("; %.2f× %d loop(s) (median of the %d pairs' ratios)", median(rt), base[g.key], len(rt))
		}
		fmt.Fprintln(w, line)
	}
}

// median of vs (not empty); vs is reordered.
func median(vs []float64) float64 {
	sort.Float64s(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

func ratioOrZero(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
