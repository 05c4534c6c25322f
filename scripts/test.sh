#!/usr/bin/env bash
# The project's test command (README "Quick start"). It installs what the tests
# need on a fresh Debian machine, then runs vet, the size check of the raptor
# binary, the race-enabled test suite, the plain (non-race) pass of the
# simulated-network and allocation tests, every benchmark once, every fuzz
# target for a short bound, the DPDK-tagged tests and the bench module.
# Every go test pass goes through scripts/testfilter: the output of plain
# `go test` (ok/FAIL lines, failing tests), then every skipped test with its
# reason; with CI=true a skip that scripts/skips.allow does not excuse fails.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
log() { printf '\n== %s\n' "$*"; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# --- system packages (DPDK headers, nftables for loss injection, iproute2/ethtool for namespaces)
need_pkgs=()
pkg-config --exists libdpdk 2>/dev/null || need_pkgs+=(libdpdk-dev pkg-config)
command -v nft >/dev/null 2>&1 || need_pkgs+=(nftables)
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v ethtool >/dev/null 2>&1 || need_pkgs+=(ethtool)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing ${need_pkgs[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    log "NOT root: cannot install ${need_pkgs[*]}; tests needing them will say they skipped"
  fi
fi

# --- kcat (Debian package kafkacat): the librdkafka client of integration/kafka_proxy_test.go
if ! command -v kcat >/dev/null 2>&1 && ! command -v kafkacat >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    log "installing kafkacat"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kafkacat >/dev/null
  fi
  if ! command -v kcat >/dev/null 2>&1 && ! command -v kafkacat >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
      echo "scripts/test.sh: kcat is missing and could not be installed (apt-get install kafkacat, as root)" >&2
      exit 1
    fi
    log "NOT root: cannot install kafkacat; the kcat tests will say they skipped"
  fi
fi

# --- tracefs, for the bench's syscall counter (perf tracepoint raw_syscalls:sys_enter)
if [ "$(id -u)" = 0 ] && [ -d /sys/kernel/tracing ] && [ ! -e /sys/kernel/tracing/events ]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || log "cannot mount tracefs: the bench counts no syscalls"
fi

# --- the skip report of every go test pass (see scripts/testfilter)
go build -o "$W/testfilter" ./scripts/testfilter
TF=("$W/testfilter" -allow "$PWD/scripts/skips.allow")
# --- Rafka (issue #12): the generated code in compat/rafka/rafkapb must match rafka.proto.
# Installs protoc (Debian protobuf-compiler) and the two Go plugins, reruns the
# package's go:generate line in a temporary directory and compares.
log "rafka: regenerate compat/rafka/rafkapb from rafka.proto and compare"
if ! command -v protoc >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
  fi
  command -v protoc >/dev/null 2>&1 || { echo "FAIL: protoc is missing and could not be installed (apt-get install protobuf-compiler needs root)"; exit 1; }
fi
rafka_bin=$(mktemp -d); rafka_gen=$(mktemp -d)
GOBIN="$rafka_bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$(go list -m -f '{{.Version}}' google.golang.org/protobuf)" \
  || { echo "FAIL: go install protoc-gen-go"; exit 1; }
GOBIN="$rafka_bin" go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2 \
  || { echo "FAIL: go install protoc-gen-go-grpc"; exit 1; }
cp compat/rafka/rafkapb/rafka.proto "$rafka_gen"/
rafka_cmd=$(sed -n 's|^//go:generate ||p' compat/rafka/rafkapb/doc.go)
(cd "$rafka_gen" && PATH="$rafka_bin:$PATH" eval "$rafka_cmd") || { echo "FAIL: protoc could not regenerate rafka.proto"; exit 1; }
for f in rafka.pb.go rafka_grpc.pb.go; do
  # The protoc version line depends on the Debian release; everything else must match.
  if ! diff -u <(grep -v '^// .*protoc  *v[0-9]' "compat/rafka/rafkapb/$f") <(grep -v '^// .*protoc  *v[0-9]' "$rafka_gen/$f"); then
    echo "FAIL: compat/rafka/rafkapb/$f is stale: run 'go generate ./compat/rafka/rafkapb' with protoc-gen-go and protoc-gen-go-grpc v1.6.2"; exit 1
  fi
done
rm -rf "$rafka_bin" "$rafka_gen"

log "gofmt + go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...

# --- a lean raptor binary (issue 15): raptor (broker, gateway, proxy, stat) at most MAX_RAPTOR_MB
# stripped, no chart writer linked in; the separate commands' sizes are printed, not gated
MAX_RAPTOR_MB=${MAX_RAPTOR_MB:-15}
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB (%d bytes)", b / 1e6, b }'; }
log "binary sizes (go build -ldflags=\"-s -w\")"
go build -ldflags="-s -w" -o "$W/raptor" ./cmd/raptor
size=$(stat -c %s "$W/raptor")
echo "raptor: $(mb "$size"), limit ${MAX_RAPTOR_MB} MB"
if [ "$size" -gt $((MAX_RAPTOR_MB * 1000000)) ]; then
  echo "FAIL: raptor is $size bytes stripped, above ${MAX_RAPTOR_MB} MB (MAX_RAPTOR_MB): keep heavy commands in cmd/raptor-*"; exit 1
fi
if go list -deps ./cmd/... | grep -q '^gonum.org/'; then
  echo "FAIL: a command of cmd/ links gonum.org packages (charts belong to bench/cmd/raptor-bench-all)"; exit 1
fi
go vet -tags nobroker ./cmd/raptor
go build -tags nobroker -ldflags="-s -w" -o "$W/raptor-nobroker" ./cmd/raptor
echo "raptor -tags nobroker (gateway, proxy, stat): $(mb "$(stat -c %s "$W/raptor-nobroker")")"
for c in raptor-demo raptor-bench raptor-schema raptor-rafka; do
  go build -ldflags="-s -w" -o "$W/$c" "./cmd/$c"
  echo "$c: $(mb "$(stat -c %s "$W/$c")")"
done
rm -f "$W"/raptor*

log "go test -race -shuffle=on"
go test -json -race -shuffle=on -timeout 20m -count=1 ./... | "${TF[@]}" -race -label "race pass"

log "plain build: simulated-network protocol tests over all 50 seeds (the race pass runs a subset), zero-allocation test"
go test -json -count=1 -timeout 15m -run 'TestSim|TestSteadyStateAllocs' ./reliable/ | "${TF[@]}" -label "plain pass"

log "every benchmark once (-benchtime 1x): a benchmark body that breaks fails here"
go test -json -count=1 -timeout 10m -run '^$' -bench . -benchtime 1x ./... | "${TF[@]}" -label "benchmarks"

# fuzz_engine_timeout OUT TARGET: the fuzz run whose output is in OUT failed only by
# the engine's shutdown time-out: "context deadline exceeded", no input written, and
# the target's FAIL line at or after the whole -fuzztime budget.
fuzz_engine_timeout() {
  grep -q 'context deadline exceeded' "$1" || return 1
  ! grep -q 'Failing input written' "$1" || return 1
  local secs budget
  case "$FUZZTIME" in
    *[0-9]s) budget=${FUZZTIME%s} ;;
    *[0-9]m) budget=$(( ${FUZZTIME%m} * 60 )) ;;
    *) return 1 ;; # a count budget (Nx) has no deadline to race
  esac
  secs=$(sed -n "s/^--- FAIL: $2 (\([0-9.]*\)s)\$/\1/p" "$1" | head -1)
  [ -n "$secs" ] && awk -v a="$secs" -v b="$budget" 'BEGIN { exit !(a + 0 >= b + 0) }'
}

log "fuzz targets (${FUZZTIME} each)"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for fz in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $fz"
    out=$(mktemp)
    if ! go test -run='^$' -fuzz="^${fz}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=100x "$pkg" 2>&1 | tee "$out"; then
      # On a loaded machine the fuzzing engine itself can fail at the end of -fuzztime
      # with "context deadline exceeded" and no finding: Go 1.26's coordinator lets a
      # worker's shutdown error through when the deadline passes mid-execution
      # (go.dev/issue/75804, fixed in Go 1.27); targets whose executions take a
      # millisecond (whole sessions) hit it most. Retry that once; if the retry ends the
      # same way after its whole budget, the target fuzzed its budget twice without a
      # finding: say so and go on. A real finding (a crash, a failed check, a hang the
      # target's watchdog turns into a panic) writes its input to testdata/fuzz and
      # fails the run as usual.
      if fuzz_engine_timeout "$out" "$fz"; then
        echo "-- $pkg $fz: the fuzzing engine timed out without a finding; running it again"
        if ! go test -run='^$' -fuzz="^${fz}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=100x "$pkg" 2>&1 | tee "$out"; then
          if fuzz_engine_timeout "$out" "$fz"; then
            echo "-- $pkg $fz: NOTICE: the engine's shutdown time-out again (go.dev/issue/75804), after fuzzing the whole ${FUZZTIME} without a finding; counted as passed"
          else
            rm -f "$out"; exit 1
          fi
        fi
      else
        rm -f "$out"; exit 1
      fi
    fi
    rm -f "$out"
  done
done

if [ -d dpdk ]; then
  if pkg-config --exists libdpdk 2>/dev/null; then
    log "go vet + go test -tags dpdk ./dpdk/... ./integration/..."
    go vet -tags dpdk ./dpdk/... ./integration/...
    go test -json -race -tags dpdk -timeout 15m -count=1 ./dpdk/... ./integration/... | "${TF[@]}" -race -label "dpdk pass"
    go test -json -tags dpdk -timeout 10m -count=1 -run '^$' -bench . -benchtime 1x ./dpdk/... ./integration/... | "${TF[@]}" -label "dpdk benchmarks"
  else
    log "SKIPPED DPDK tests: libdpdk-dev is not installed and could not be installed (not root)"
    if [ "${CI:-}" = true ]; then echo "FAIL: CI=true must run the DPDK tests"; exit 1; fi
  fi
fi

if [ -f bench/go.mod ]; then
  log "bench module (peers: kcp-go, quic-go)"
  (cd bench && go vet ./... && go test -json -race -timeout 10m -count=1 ./... | "${TF[@]}" -race -label "bench module")
fi

log "all tests passed"
