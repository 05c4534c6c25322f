#!/usr/bin/env bash
# Runs the rtt suite (and the kafka suite: producer and consumer in one
# namespace, the embedded broker in the other) between two network namespaces
# over a lossy, delayed path, for raptor, tcp, kcp, quic (and raw udp for rtt). The kernel here has no netem,
# so:
#   - delay: bench/cmd/tunbridge (in the root namespace) creates a TUN device in
#     each namespace, joins them and holds
#     every packet DELAY (default 1ms) each way (one timer heap per direction);
#   - loss:  nftables, a netdev ingress hook on each namespace's TUN device,
#     `numgen random mod 100 < N drop` (so N% each way); LOSS_VIA=bridge makes
#     the bridge drop instead, with a seeded random source (SEED).
# The server (`raptor-bench-all serve`) runs in namespace B, the client in A.
# Everything the script creates (namespaces, devices, processes, tables) is
# removed on exit.
#
# Usage: scripts/lossy-bench.sh [OUTDIR]
#   env: LOSSES="1 5" DELAY=1ms COUNT=2000 SIZE=1024 REPLY=1024
#        TRANSPORTS=raptor,tcp,kcp,quic,udp TIMEOUT=40s LOSS_VIA=nft|bridge SEED=1
#        KAFKA=1 KAFKA_COUNT=2000 KAFKA_RATE=2000 KAFKA_DURATION=2s (the kafka suite
#        over the same path; KAFKA_DURATION is how long kafka-max goes flat out)
#        LOSSES may hold 0: the same path without loss (the nft rule drops none)
#        BIN=... TUNBRIDGE=... (prebuilt binaries; default: build bench/ here)
# Writes OUTDIR/lossy-N.md (Markdown table), OUTDIR/lossy-N.jsonl (archive for
# `raptor-bench-all report`) and OUTDIR/bench-lossy-N.png per loss level N, and
# prints the tables.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-/tmp/raptor-lossy}
LOSSES=${LOSSES:-"1 5"}
DELAY=${DELAY:-1ms}
COUNT=${COUNT:-2000}
SIZE=${SIZE:-1024}
REPLY=${REPLY:-1024}
TRANSPORTS=${TRANSPORTS:-raptor,tcp,kcp,quic,udp}
TIMEOUT=${TIMEOUT:-40s}
LOSS_VIA=${LOSS_VIA:-nft}
SEED=${SEED:-1}
KAFKA=${KAFKA:-1}
KAFKA_COUNT=${KAFKA_COUNT:-2000}
KAFKA_RATE=${KAFKA_RATE:-2000}
KAFKA_DURATION=${KAFKA_DURATION:-2s}
BASE_PORT=9400

[ "$(id -u)" = 0 ] || { echo "lossy-bench: needs root (network namespaces, TUN, nftables)" >&2; exit 1; }
if [ "$LOSS_VIA" = nft ] && ! command -v nft >/dev/null 2>&1; then
  echo "lossy-bench: installing nftables" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi

mkdir -p "$OUT"
rm -f "$OUT"/lossy-*.jsonl
TAG=rb$$
NSA=${TAG}a NSB=${TAG}b TUNA=${TAG}ta TUNB=${TAG}tb
WORK=$(mktemp -d)
BRIDGE_PID= SERVER_PID=

cleanup() {
  set +e
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  [ -n "$BRIDGE_PID" ] && kill "$BRIDGE_PID" 2>/dev/null && wait "$BRIDGE_PID" 2>/dev/null
  ip netns del "$NSA" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
  [ -f "$WORK/bridge.log" ] && sed 's/^/  /' "$WORK/bridge.log" >&2
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # FILE PATTERN SECONDS: poll a log for a line (scripts may poll; tests may not)
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "lossy-bench: timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

if [ -n "${BIN:-}" ] && [ -n "${TUNBRIDGE:-}" ]; then
  cp "$BIN" "$WORK/raptor-bench-all"
  cp "$TUNBRIDGE" "$WORK/tunbridge"
else
  echo "== building" >&2
  (cd bench && go build -o "$WORK/raptor-bench-all" ./cmd/raptor-bench-all && go build -o "$WORK/tunbridge" ./cmd/tunbridge)
fi

BRIDGE_LOSS=0
FAILED=0
run_bridge() { # LOSS_FRACTION
  "$WORK/tunbridge" --a "$TUNA" --a-netns "/run/netns/$NSA" --b "$TUNB" --b-netns "/run/netns/$NSB" \
    --delay "$DELAY" --loss "$1" --seed "$SEED" \
    --ready "$WORK/ready" --max-time 1h 2>>"$WORK/bridge.log" &
  BRIDGE_PID=$!
  wait_for "$WORK/ready" ready 10
}

setup_net() {
  ip netns add "$NSA"
  ip netns add "$NSB"
  rm -f "$WORK/ready"
  run_bridge "$BRIDGE_LOSS" # creates each TUN device inside its namespace
  ip -n "$NSA" link set lo up
  ip -n "$NSB" link set lo up
  ip -n "$NSA" addr add 10.77.0.1 peer 10.77.0.2 dev "$TUNA"
  ip -n "$NSB" addr add 10.77.0.2 peer 10.77.0.1 dev "$TUNB"
  ip -n "$NSA" link set "$TUNA" mtu 1500 up
  ip -n "$NSB" link set "$TUNB" mtu 1500 up
}

set_nft_loss() { # PERCENT
  local ns dev
  for pair in "$NSA:$TUNA" "$NSB:$TUNB"; do
    ns=${pair%%:*} dev=${pair#*:}
    ip netns exec "$ns" nft delete table netdev rbloss 2>/dev/null || true
    ip netns exec "$ns" nft -f - <<NFT
table netdev rbloss {
  chain ingress {
    type filter hook ingress device "$dev" priority 0; policy accept;
    numgen random mod 100 < $1 counter drop
  }
}
NFT
  done
}

start_server() {
  ip netns exec "$NSB" "$WORK/raptor-bench-all" serve --transport "$TRANSPORTS" \
    --listen "10.77.0.2:$BASE_PORT" --serve-for 1h 2>"$WORK/server.log" &
  SERVER_PID=$!
  wait_for "$WORK/server.log" ready 20
}

stop_all() {
  kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
  kill "$BRIDGE_PID" 2>/dev/null; wait "$BRIDGE_PID" 2>/dev/null || true; BRIDGE_PID=
  ip netns del "$NSA"; ip netns del "$NSB"
}

for loss in $LOSSES; do
  if [ "$LOSS_VIA" = bridge ]; then
    BRIDGE_LOSS=$(awk -v l="$loss" 'BEGIN { printf "%.4f", l / 100 }')
  fi
  setup_net
  if [ "$LOSS_VIA" = nft ]; then set_nft_loss "$loss"; fi
  start_server
  echo "== rtt ${SIZE}/${REPLY} B, ${loss}% loss each way (via $LOSS_VIA), ${DELAY} one-way delay, $COUNT round trips" >&2
  ip netns exec "$NSA" "$WORK/raptor-bench-all" rtt --transport "$TRANSPORTS" --remote "10.77.0.2:$BASE_PORT" \
    --size "$SIZE" --reply "$REPLY" --count "$COUNT" --warmup 100 --timeout "$TIMEOUT" --loss-timeout 50ms --verbose \
    --markdown --plot "$OUT/bench-lossy-$loss.png" \
    --save "$OUT/lossy-$loss.jsonl" --condition "${loss}% loss, ${DELAY} one-way delay" \
    --title "rtt ${SIZE}/${REPLY} B, ${loss}% loss, ${DELAY} one-way delay" | tee "$OUT/lossy-$loss.md" \
    || { echo "lossy-bench: some rtt runs failed at ${loss}% loss (see above)" >&2; FAILED=1; }
  if [ "$KAFKA" = 1 ]; then
    KT=$(echo "$TRANSPORTS" | tr , '\n' | grep -vx udp | paste -sd, -)
    echo "== kafka over the same path: $KAFKA_COUNT records at $KAFKA_RATE/s, then flat out for $KAFKA_DURATION" >&2
    ip netns exec "$NSA" "$WORK/raptor-bench-all" kafka --transport "$KT" --remote "10.77.0.2:$BASE_PORT" \
      --size 64 --count "$KAFKA_COUNT" --rate "$KAFKA_RATE" --duration "$KAFKA_DURATION" --timeout "$TIMEOUT" --verbose \
      --markdown --save "$OUT/lossy-$loss.jsonl" --condition "${loss}% loss, ${DELAY} one-way delay" \
      | tee -a "$OUT/lossy-$loss.md" \
      || { echo "lossy-bench: some kafka runs failed at ${loss}% loss (see above)" >&2; FAILED=1; }
  fi
  if [ "$LOSS_VIA" = nft ]; then
    ip netns exec "$NSA" nft list table netdev rbloss | grep -o 'counter packets [0-9]*' | sed "s/^/  $NSA drops: /" >&2
    ip netns exec "$NSB" nft list table netdev rbloss | grep -o 'counter packets [0-9]*' | sed "s/^/  $NSB drops: /" >&2
  fi
  stop_all
done
exit "$FAILED"
