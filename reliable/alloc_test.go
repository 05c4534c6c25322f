package reliable

import (
	"io"
	"testing"
)

// TestSteadyStateAllocs: on a warm stream over loopback, writing a message and
// reading it on the other side allocates nothing anywhere in the process
// (sender, both receive loops, ACKs), for 64-byte and 1 KiB messages.
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
		allocs := testing.AllocsPerRun(2000, func() {
			if _, e := w.Write(msg); e != nil && err == nil {
				err = e
			}
			if _, e := io.ReadFull(r, buf); e != nil && err == nil {
				err = e
			}
		})
		if err != nil {
			t.Fatalf("%d-byte messages: %v", size, err)
		}
		if allocs != 0 {
			t.Errorf("%d-byte message Write+Read: %.2f allocations, want 0", size, allocs)
		}
	}
}
