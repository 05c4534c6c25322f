package benchkit

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progressDelay is how long a run goes before its bar appears; shorter runs
// print nothing.
var progressDelay = time.Second

// progress draws a bar on a writer (stderr) while a run lasts longer than
// progressDelay. The run calls set with its position; the drawing goroutine
// reads it five times a second. A nil *progress is a no-op.
type progress struct {
	w     io.Writer
	label string
	total float64
	pos   atomic.Uint64 // math.Float64bits
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
	drawn bool
	tty   bool // redraw in place; otherwise one line every few seconds
}

func startProgress(w io.Writer, label string, total float64) *progress {
	if w == nil || total <= 0 {
		return nil
	}
	p := &progress{w: w, label: label, total: total, done: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	p.wg.Add(1)
	go p.loop()
	return p
}

func (p *progress) set(pos float64) {
	if p != nil {
		p.pos.Store(math.Float64bits(pos))
	}
}

func (p *progress) stop() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		close(p.done)
		p.wg.Wait()
		if p.drawn && p.tty {
			p.draw(p.total)
			fmt.Fprintln(p.w)
		}
	})
}

func (p *progress) loop() {
	defer p.wg.Done()
	first := time.NewTimer(progressDelay)
	defer first.Stop()
	select {
	case <-p.done:
		return
	case <-first.C:
	}
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		p.drawn = true
		p.draw(math.Float64frombits(p.pos.Load()))
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

func (p *progress) draw(pos float64) {
	const width = 30
	f := pos / p.total
	f = max(0, min(1, f))
	full := int(f * width)
	start, end := "\r", ""
	if !p.tty {
		start, end = "", "\n"
	}
	fmt.Fprintf(p.w, "%s%-28s [%s%s] %3.0f%%%s", start, p.label, strings.Repeat("#", full), strings.Repeat(".", width-full), 100*f, end)
}
