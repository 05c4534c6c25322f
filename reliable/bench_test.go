package reliable

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// loopStreams opens a session over loopback UDP and one stream on it, and
// returns the client's end and the listener's (accepted) end.
func loopStreams(tb testing.TB, cfg *Config) (client, server *Stream) {
	tb.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Dial(ctx, l.Addr().String(), pin(l, cfg))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.CloseWithError(0, "done") })
	client, err = s.OpenStream(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	// The stream reaches the listener with its first byte.
	if _, err := client.Write([]byte{0}); err != nil {
		tb.Fatal(err)
	}
	server, err = l.AcceptStream(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(server, make([]byte, 1)); err != nil {
		tb.Fatal(err)
	}
	return client, server
}

// oneWay writes n messages of len(msg) bytes, each with one Write, from w
// while it reads them all from r with buf. It reports the first error.
func oneWay(w, r *Stream, msg, buf []byte, n int) error {
	errc := make(chan error, 1)
	go func() {
		for range n {
			if _, err := w.Write(msg); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
	}
	return <-errc
}

func benchStreamWriteRead(b *testing.B, size int, cfg *Config) {
	w, r := loopStreams(b, cfg)
	msg, buf := make([]byte, size), make([]byte, size)
	// Warm up: buffers, send history and the congestion window reach their
	// steady-state sizes.
	if err := oneWay(w, r, msg, buf, max(1000, (8<<20)/size)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	if err := oneWay(w, r, msg, buf, b.N); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	// allocs/op is rounded down to an integer; this keeps the fraction.
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/msg")
	// The share of the bytes the receiver's AEAD decrypted straight into its
	// stream's ring (rxring.go), warm-up included.
	if c := r.s.Stats().Counters; c[CounterStreamBytesReceived] > 0 {
		b.ReportMetric(100*float64(c[CounterStreamBytesOpenedInRing])/float64(c[CounterStreamBytesReceived]), "%-in-ring")
	}
}

// BenchmarkStreamWriteRead64 is a steady one-way stream of 64-byte messages
// over loopback: one Write per message, the reader reads them all. allocs/op
// is allocations per message, over the whole process (both endpoints).
func BenchmarkStreamWriteRead64(b *testing.B) { benchStreamWriteRead(b, 64, nil) }

// BenchmarkStreamWriteRead1K is BenchmarkStreamWriteRead64 with 1 KiB messages.
func BenchmarkStreamWriteRead1K(b *testing.B) { benchStreamWriteRead(b, 1024, nil) }

// BenchmarkStreamWriteRead1KPlaintext is BenchmarkStreamWriteRead1K with
// Config.InsecurePlaintext: the difference is what packet protection costs.
func BenchmarkStreamWriteRead1KPlaintext(b *testing.B) {
	benchStreamWriteRead(b, 1024, &Config{InsecurePlaintext: true})
}

// BenchmarkPingPong64 measures the round trip of a 64-byte message echoed by
// the listener's side: ns/op is the RTT through both endpoints.
func BenchmarkPingPong64(b *testing.B) { benchPingPong64(b, nil) }

// BenchmarkPingPong64Plaintext is BenchmarkPingPong64 with
// Config.InsecurePlaintext: the difference is what packet protection costs.
func BenchmarkPingPong64Plaintext(b *testing.B) {
	benchPingPong64(b, &Config{InsecurePlaintext: true})
}

func benchPingPong64(b *testing.B, cfg *Config) {
	c, srv := loopStreams(b, cfg)
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				return
			}
			if _, err := srv.Write(buf); err != nil {
				return
			}
		}
	}()
	msg, buf := make([]byte, 64), make([]byte, 64)
	pingPong := func(n int) {
		for range n {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	pingPong(1000)
	b.ReportAllocs()
	b.ResetTimer()
	pingPong(b.N)
}
