// Command tunbridge is the userspace impairment bridge of
// scripts/lossy-bench.sh: the kernel here has no netem, so two TUN devices,
// later moved into two network namespaces, are joined by this process, which
// holds every IP packet for a fixed one-way delay (one timer heap per
// direction, never a timer per packet) and optionally drops packets with a
// seeded random source. The script drops with nftables instead by default.
//
//	tunbridge --a rbtA --a-netns /run/netns/A --b rbtB --b-netns /run/netns/B \
//	          --delay 1ms [--loss 0.01 --seed 1] --ready FILE
//
// It creates both devices (each in its namespace with --a-netns/--b-netns),
// writes FILE once they exist, and runs until SIGINT/SIGTERM or
// --max-time, then prints its counters.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/raptormq/raptor/bench/impair"
)

func main() {
	a := flag.String("a", "rbtA", "name of the first TUN device")
	b := flag.String("b", "rbtB", "name of the second TUN device")
	nsA := flag.String("a-netns", "", "create the first device in this network namespace (e.g. /run/netns/A)")
	nsB := flag.String("b-netns", "", "create the second device in this network namespace")
	delay := flag.Duration("delay", time.Millisecond, "one-way delay added to every packet")
	jitter := flag.Duration("jitter", 0, "uniform random extra delay in [0, jitter)")
	loss := flag.Float64("loss", 0, "probability in [0, 1) of dropping each packet, each direction")
	seed := flag.Uint64("seed", 1, "seed of the loss and jitter random source")
	queue := flag.Int("queue", 4096, "packets held per direction at most; more are dropped and counted")
	ready := flag.String("ready", "", "file written once both devices exist")
	maxTime := flag.Duration("max-time", time.Hour, "stop after this long")
	flag.Parse()
	cfg := impair.Config{Delay: *delay, Jitter: *jitter, Loss: *loss, Seed: *seed, Queue: *queue}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "tunbridge:", err)
		os.Exit(2)
	}
	ta, err := impair.OpenTUNIn(*a, *nsA)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunbridge:", err)
		os.Exit(1)
	}
	tb, err := impair.OpenTUNIn(*b, *nsB)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tunbridge:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *maxTime)
	defer cancel()
	br := impair.NewBridge(ta, tb, cfg)
	if *ready != "" {
		if err := os.WriteFile(*ready, []byte("ready\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "tunbridge:", err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "tunbridge: %s <-> %s, delay %v, jitter %v, loss %.3f, seed %d\n", *a, *b, *delay, *jitter, *loss, *seed)
	if err := br.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tunbridge:", err)
	}
	fmt.Fprintln(os.Stderr, "tunbridge:", br.Stats())
}
