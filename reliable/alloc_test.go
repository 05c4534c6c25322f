package reliable

import (
	"io"
	"runtime"
	"testing"
)

// TestSteadyStateAllocs: on a warm stream over loopback, writing a message and
// reading it on the other side allocates nothing anywhere in the process
// (writer, sender, both receive loops, ACKs), for 64-byte and 1 KiB messages.
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	w, r := loopStreams(t, nil)
	for _, size := range []int{64, 1024} {
		msg, buf := make([]byte, size), make([]byte, size)
		if err := oneWay(w, r, msg, buf, (4<<20)/size); err != nil {
			t.Fatal(err)
		}
		var err error
		writeRead := func() {
			if _, e := w.Write(msg); e != nil && err == nil {
				err = e
			}
			if _, e := io.ReadFull(r, buf); e != nil && err == nil {
				err = e
			}
		}
		const runs = 2000
		allocs := testing.AllocsPerRun(runs, writeRead)
		// AllocsPerRun rounds down; count exactly too. The runtime may
		// allocate now and then for itself (sync.Pool refills after a GC, a
		// sudog for a blocked goroutine, its timer heap growing, net's error
		// when a leading reader is interrupted by a past read deadline), so
		// allow 2% of the runs: 4–31 were counted in 2000 runs, where one
		// allocation in 50 messages would give 40 and one per message 2000.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range runs {
			writeRead()
		}
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("%d-byte messages: %v", size, err)
		}
		n := after.Mallocs - before.Mallocs
		t.Logf("%d-byte Write+Read: %d allocations in %d runs", size, n, runs)
		if allocs != 0 || n > runs/50 {
			t.Errorf("%d-byte message Write+Read: AllocsPerRun %.0f, %d allocations in %d runs; want 0", size, allocs, n, runs)
		}
	}
}
