#!/usr/bin/env bash
# The full side-by-side comparison of issue 3: every suite over raptor, tcp,
# tcp behind a 64 KiB buffer, tcp with TLS 1.3, raw udp, kcp-go and quic-go on loopback, then rtt and kafka over a lossy, delayed path
# between two network namespaces (scripts/lossy-bench.sh, needs root), written
# to docs/BENCHMARKS.md with charts docs/bench-*.png.
#
# Usage: scripts/compare.sh
#   env: TRANSPORTS=raptor,tcp,tcp-buffered,tcp+tls,tcp+tls-buffered,udp,kcp,quic COUNT=20000 DURATION=3s
#        KAFKA_COUNT=5000 KAFKA_RATE=2000 LOSSY=1 (0 skips the lossy part)
#        LOSSY_COUNT=2000 LOSSY_KAFKA_COUNT=2000 SRC=HEAD (a commit to build, or "worktree")
set -euo pipefail
cd "$(dirname "$0")/.."

TRANSPORTS=${TRANSPORTS:-raptor,tcp,tcp-buffered,tcp+tls,tcp+tls-buffered,udp,kcp,quic}
COUNT=${COUNT:-20000}
DURATION=${DURATION:-3s}
KAFKA_COUNT=${KAFKA_COUNT:-5000}
KAFKA_RATE=${KAFKA_RATE:-2000}
LOSSY=${LOSSY:-1}
LOSSY_COUNT=${LOSSY_COUNT:-2000}
LOSSY_KAFKA_COUNT=${LOSSY_KAFKA_COUNT:-2000}
DELAY=1ms
DOC=docs/BENCHMARKS.md

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# The syscall count per message (perf tracepoint raw_syscalls:sys_enter) needs tracefs.
if [ "$(id -u)" = 0 ] && [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing || echo "compare: cannot mount tracefs: no syscall counts" >&2
fi
BIN=$W/raptor-bench-all
# Build from a commit (default HEAD), not from the working tree, which others
# may be editing: the numbers then belong to that commit. SRC=worktree builds
# the working tree as it is.
SRC=${SRC:-HEAD}
if [ "$SRC" = worktree ]; then
  SRCDIR=$PWD
  COMMIT="$(git rev-parse --short HEAD) + working tree"
else
  SRCDIR=$W/src
  mkdir -p "$SRCDIR"
  git archive "$SRC" | tar -x -C "$SRCDIR"
  COMMIT=$(git rev-parse --short "$SRC")
fi
(cd "$SRCDIR/bench" && go build -o "$BIN" ./cmd/raptor-bench-all && go build -o "$W/tunbridge" ./cmd/tunbridge)
KAFKA_T=$(echo "$TRANSPORTS" | tr , '\n' | grep -vx udp | paste -sd, -)

# run keeps going when a run fails, and collects what failed for the report.
run() {
  echo "+ raptor-bench-all $*" >&2
  local rc=0
  "$BIN" "$@" 2>"$W/stderr" || rc=$?
  cat "$W/stderr" >&2
  grep -h 'failed' "$W/stderr" >>"$W/failures" || true
  [ "$rc" = 0 ] || echo "exit status $rc: raptor-bench-all $*" >>"$W/failures"
}
touch "$W/failures"

run rtt --transport "$TRANSPORTS" --size 64,1024 --count "$COUNT" \
  --save "$W/rtt.jsonl" --plot docs/bench-rtt.png --title "rtt on loopback" | tee "$W/rtt.txt"
run throughput --transport "$TRANSPORTS" --size 64,1024 --duration "$DURATION" \
  --save "$W/throughput.jsonl" --plot docs/bench-throughput.png --title "one-way, one Write per message, loopback" | tee "$W/throughput.txt"
run kafka --transport "$KAFKA_T" --size 64 --rate "$KAFKA_RATE" --count "$KAFKA_COUNT" --duration "$DURATION" \
  --save "$W/kafka.jsonl" --plot docs/bench-kafka.png --title "franz-go -> kfake -> franz-go" | tee "$W/kafka.txt"
run idle --transport "$KAFKA_T" --conns 100 --duration "$DURATION" --save "$W/idle.jsonl" | tee "$W/idle.txt"

LOSSY_NOTE=""
if [ "$LOSSY" = 1 ] && [ "$(id -u)" = 0 ]; then
  LOSSES="1 5" COUNT=$LOSSY_COUNT DELAY=$DELAY SIZE=1024 REPLY=1024 BIN=$BIN TUNBRIDGE=$W/tunbridge \
    KAFKA=1 KAFKA_COUNT=$LOSSY_KAFKA_COUNT KAFKA_RATE=$KAFKA_RATE \
    TRANSPORTS=$(echo "$TRANSPORTS" | tr , '\n' | grep -E -x 'raptor|tcp|kcp|quic|udp' | paste -sd, -) \
    scripts/lossy-bench.sh "$W/lossy" 2> >(tee "$W/lossy-stderr" >&2) || echo "exit status $?: scripts/lossy-bench.sh" >>"$W/failures"
  grep -h 'failed' "$W/lossy-stderr" >>"$W/failures" || true
  for l in 1 5; do
    "$BIN" report --plot "docs/bench-lossy-$l.png" --title "$l% loss each way, $DELAY one-way delay" \
      "$W/lossy/lossy-$l.jsonl" >/dev/null
  done
else
  LOSSY_NOTE="The lossy part did not run (needs root; LOSSY=$LOSSY)."
fi

HEADER=$(head -1 "$W/rtt.txt")
lossy_md() { # LOSS
  if [ -f "$W/lossy/lossy-$1.jsonl" ]; then
    echo "### $1% loss each way, $DELAY one-way delay"
    echo
    echo "rtt: 1 KiB request, 1 KiB reply, $LOSSY_COUNT round trips after 100 of warm-up (p99.9 of $LOSSY_COUNT samples is"
    echo "their 3rd largest); kafka: 64 B records, $LOSSY_KAFKA_COUNT at $KAFKA_RATE/s, then flat out for 2 s; producer and"
    echo "consumer in one namespace, broker in the other."
    echo
    echo
    echo "Machine at the start of these runs: \`$(grep -m1 '^# ' "$W/lossy/lossy-$1.md" | sed 's/^# //')\`"
    echo
    "$BIN" report "$W/lossy/lossy-$1.jsonl"
    echo
    echo "![rtt at $1% loss](bench-lossy-$1.png)"
    echo
  fi
}
LOSSY_FILES=$(ls "$W"/lossy/lossy-*.jsonl 2>/dev/null || true)

{
  cat <<MD
# Benchmarks

Raptor side by side with raw UDP (the floor of the machine: no reliability, losses counted), TCP
(TCP_NODELAY), *tcp-buffered* (TCP behind a 64 KiB \`bufio\` write buffer and read buffer on both ends: flushed
when full, before the conn would wait in a read, and at the latest 500 µs after the first byte waits — the best a TCP
application can do for small messages), *tcp+tls* (TLS 1.3 with \`crypto/tls\` over TCP, an ephemeral ECDSA P-256
certificate, one record per \`Write\`), *tcp+tls-buffered* (the same behind tcp-buffered's buffers: records of up to 16 KiB), kcp-go (fast mode \`NoDelay(1,10,2,1)\`, windows 1024, stream mode) and quic-go (one stream), through
one harness (\`internal/benchkit\`, peers in the separate \`bench/\` module). Generated by
\`scripts/compare.sh\`; do not edit by hand.

- Date: $(date -u +"%Y-%m-%d %H:%M UTC"), commit \`$COMMIT\`
- Machine: \`${HEADER#\# }\`
- Commands (binary \`bench/cmd/raptor-bench-all\`; \`raptor-bench\` (\`raptor bench\`) takes the same flags for raptor, tcp, udp):
  - \`raptor-bench-all rtt --transport $TRANSPORTS --size 64,1024 --count $COUNT\` (1000 warm-up round trips)
  - \`raptor-bench-all throughput --transport $TRANSPORTS --size 64,1024 --duration $DURATION\`
  - \`raptor-bench-all kafka --transport $KAFKA_T --size 64 --rate $KAFKA_RATE --count $KAFKA_COUNT --duration $DURATION\`
  - \`raptor-bench-all idle --transport $KAFKA_T --conns 100 --duration $DURATION\`
  - \`LOSSES="1 5" COUNT=$LOSSY_COUNT KAFKA_COUNT=$LOSSY_KAFKA_COUNT scripts/lossy-bench.sh\` (rtt 1 KiB/1 KiB and kafka
    between two network namespaces, 1 ms one-way delay by a userspace TUN bridge, \`bench/cmd/tunbridge\`, and loss
    by nftables \`numgen random mod 100 < N drop\` on the ingress of each side, so N% each way)

How to read: latencies are round trips (rtt) or producer-to-consumer (kafka) in µs; throughput is counted
at the receiver, each message one \`Write\`; *GCs* are the GC cycles during the
measurement; *CPU µs/msg* is the CPU time of the whole process (client and server both run in it on
loopback) per message received; *syscalls/msg* is every system call of the process (both ends, the Go runtime's
futex, epoll_pwait and nanosleep included) per message received, counted by the kernel with a perf counter on the
tracepoint \`raw_syscalls:sys_enter\` for every thread (\`internal/benchkit/syscount_linux.go\`; "-" where the
kernel does not let the bench count); *loss %* is what the receiver did not get (only raw UDP loses: its sender
outruns the receiver); *dup* is messages received more than once (Kafka: records consumed again with a sequence
number already seen; loss and duplicates are counted apart, by sequence number). *kafka* is at a fixed offered rate (linger 0, acks all), *kafka-max* with the producer
running flat out, where latency is queueing; over raptor it runs through \`compat/kafka\` (its broker,
TCP and Raptor on one port, and its dialer), over the others through kfake on the transport's listener
and \`kgo.Dialer\` with its dial function; its msgs/s run from the first measured record's production
to the last one's consumption. *n* is how many round trips or messages were measured: a run
that reaches its time bound (40 s under loss) reports what it measured so far. All numbers are from a single
run on a 2-core machine shared with other work (see the load averages): scheduling delays of a few ms
show up in the tails of every transport alike, and msgs/s depends on how much CPU a run got, while CPU
µs/msg (the cost of a message) varies much less from run to run. The lossy runs show no syscall count: \`ip netns
exec\` gives them a /sys without tracefs.

## Targets of issue 3 (from this run)

MD
  if [ -s "$W/failures" ]; then
    echo "Runs that failed (their rows are missing below):"
    echo
    sed 's/^/    /' "$W/failures"
    echo
  fi
  # shellcheck disable=SC2086
  "$BIN" report --targets --lossy1 "1% loss, $DELAY one-way delay" --lossy5 "5% loss, $DELAY one-way delay" \
    "$W/rtt.jsonl" "$W/throughput.jsonl" "$W/kafka.jsonl" "$W/idle.jsonl" $LOSSY_FILES
  cat <<MD

## Round-trip time on loopback

MD
  echo "Machine at the start of this suite: \`$(head -1 "$W/rtt.txt" | sed 's/^# //')\`"
  echo
  "$BIN" report "$W/rtt.jsonl"
  cat <<MD

![rtt on loopback](bench-rtt.png)

## Throughput on loopback

MD
  echo "Machine at the start of this suite: \`$(head -1 "$W/throughput.txt" | sed 's/^# //')\`"
  echo
  "$BIN" report "$W/throughput.jsonl"
  cat <<MD

![throughput on loopback](bench-throughput.png)

## Kafka: franz-go producer → embedded kfake broker → franz-go consumer

MD
  echo "Machine at the start of this suite: \`$(head -1 "$W/kafka.txt" | sed 's/^# //')\`"
  echo
  "$BIN" report "$W/kafka.jsonl"
  cat <<MD

![kafka](bench-kafka.png)

## Idle conns

Each transport opens 100 conns (raptor: 100 sessions, one dialer each) to a server in the same process,
makes one round trip on each, waits 200 ms, then measures the process CPU time while they idle for
$DURATION, and the live heap (after GC) per conn, client and server ends together.

MD
  "$BIN" report "$W/idle.jsonl"
  cat <<MD

## Under loss, with delay

MD
  if [ -n "$LOSSY_NOTE" ]; then echo "$LOSSY_NOTE"; echo; fi
  lossy_md 1
  lossy_md 5
} > "$DOC.tmp"
mv "$DOC.tmp" "$DOC"
echo "wrote $DOC" >&2
