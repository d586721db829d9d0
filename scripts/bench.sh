#!/usr/bin/env bash
# Builds the release binaries and runs both benchmarks, printing their figures:
#   1. the flush benchmark (`cargo bench --bench flush`): batched, coalesced flushes of dirty
#      character rows against one UPDATE per row;
#   2. `serai-load` with its defaults (32 WebSocket clients, 10 s per mode, mix
#      quotes=80,trade=20): the bare `echo` RPC as the ceiling, then the game RPCs, and the
#      game/echo ratio (target: >= 70 % for in-memory RPCs), then `serai-load --mode receipts`:
#      `execute_trade` without and with a fresh `request_id` (without, with, with, without) and
#      the cost of the idempotency receipt (target: < 10 % of trade throughput). It is skipped
#      when the arguments name a `--mode`, or with SERAI_BENCH_SKIP_RECEIPTS=1;
#   3. `serai-cluster-bench`: the added forwarding hop (same RPC, local vs remote owner; target
#      p50 <= 200 us on loopback) and SIGKILL-to-first-successful-RPC failover with the real
#      binary as 3 processes and default timeouts (target <= 5 s). SERAI_BENCH_SKIP_CLUSTER=1
#      skips it.
#
# Needs no setup: all three start their own node(s)/database through src/localdb/
# (SERAI_DATABASE_URL, else PostgreSQL on 127.0.0.1:5432, else a throwaway server).
# Arguments after the script name go to serai-load, e.g.
#   scripts/bench.sh --clients 8 --seconds 5
#   scripts/bench.sh --url http://127.0.0.1:7350 --mix quotes=100
# SERAI_BENCH_SKIP_FLUSH=1 skips the flush benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building (release)"
cargo build --release --bin serai-load --bin serai --bin serai-cluster-bench
if [[ -z "${SERAI_BENCH_SKIP_FLUSH:-}" ]]; then
    cargo bench --bench flush --no-run
fi

if [[ -z "${SERAI_BENCH_SKIP_FLUSH:-}" ]]; then
    echo
    echo "== flush benchmark (cargo bench --bench flush)"
    cargo bench --bench flush
fi

echo
echo "== load: serai-load $*"
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
"${target_dir:-target}/release/serai-load" "$@"
if [[ -z "${SERAI_BENCH_SKIP_RECEIPTS:-}" && " $* " != *" --mode"* ]]; then
    echo
    echo "== receipts: serai-load --mode receipts $*"
    "${target_dir:-target}/release/serai-load" --mode receipts "$@"
fi
if [[ -z "${SERAI_BENCH_SKIP_CLUSTER:-}" ]]; then
    echo
    echo "== cluster: serai-cluster-bench"
    "${target_dir:-target}/release/serai-cluster-bench"
fi
