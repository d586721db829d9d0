#!/usr/bin/env bash
# Builds the release binaries and prints every figure of the performance table (issue 14) as a
# ratio to a baseline measured in the same run, with p50/p99 latencies:
#
#   1. HTTP (`serai-auth-load` then `serai-lb-load`, 32 closed-loop clients, 10 s per mode,
#      each with its own bare `echo` RPC baseline): device auth with a new and with an
#      existing account (and the sign-up retries counted), leaderboard writes, top 10 and
#      around-owner of a 10k-record board, each as `/echo`; the writes also as a
#      fraction of the database's commit ceiling (`ceiling`: the same batch sizes committed by
#      a trivial prepared upsert, one round trip per batch, as many batches in flight as a
#      board keeps; target >= 0.80) and of the board's own write (`leaderboards::flush`)
#      committed the same way without the node (`ceiling-records`: the node's share of the
#      gap); every mode with the CPU an operation cost (the machine's and the process's), and
#      the most writes/s the machine's cores allow at the write's cost, beside the ceiling;
#   2. socket (`serai-load --mix quotes=100`, 8 then 32 clients): the in-memory game RPC
#      `get_trade_quotes` as a ratio of bare `echo` on the same socket (target >= 0.70); then
#      the default mix (quotes=80,trade=20) at 32 clients;
#   3. memory (`serai-socket-mem`, 5 000 sockets): RSS per idle authenticated socket of the
#      real binary (target <= 12 KiB), beside a bare socket held by a minimal tokio server;
#   4. world (`serai-world-load`, 3 nodes in one process): the push fan-out to 5 000 subscribed
#      sockets, publish to the last socket's receipt (p50/p99/max over 50 rounds) beside the
#      per-user `Notifier::push` and a bare echo round trip; then attacks per second from the 3
#      nodes on one world boss (`attack_world_boss`, target >= 20 000/s; SERAI_BENCH_ATTACK_RPC,
#      SERAI_BENCH_ATTACK_PAYLOAD and SERAI_BENCH_EVENT_CREATE point it elsewhere) beside echo;
#   5. unless skipped: the flush benchmark, the receipts' cost and the cluster's hop and
#      failover (the earlier issues' figures).
#
# The machine is small and shared: compare ratios within one run, and run it twice.
# Needs no setup: every part starts its own node(s)/database through src/localdb/
# (SERAI_DATABASE_URL, else PostgreSQL on 127.0.0.1:5432, else a throwaway server).
# Arguments after the script name go to serai-lb-load, e.g. `scripts/bench.sh --seconds 5`.
# SERAI_BENCH_SECONDS (default 10) sets the socket runs' seconds; SERAI_BENCH_SOCKETS (5000)
# the memory run's sockets. SERAI_BENCH_ONLY_TABLE=1 skips part 4; SERAI_BENCH_SKIP_FLUSH=1,
# SERAI_BENCH_SKIP_RECEIPTS=1 and SERAI_BENCH_SKIP_CLUSTER=1 skip its pieces.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${SERAI_BENCH_SECONDS:-10}"
sockets="${SERAI_BENCH_SOCKETS:-5000}"

echo "== building (release)"
cargo build --release --bin serai-load --bin serai --bin serai-cluster-bench \
    --bin serai-lb-load --bin serai-auth-load --bin serai-socket-mem --bin serai-world-load
target_dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="${target_dir:-target}/release"

echo
echo "== HTTP, device auth: serai-auth-load --clients 32 --seconds $seconds"
"$bin/serai-auth-load" --clients 32 --seconds "$seconds"

echo
echo "== HTTP, leaderboard: serai-lb-load --clients 32 --seed 10000 $*"
"$bin/serai-lb-load" --clients 32 --seed 10000 "$@"

for clients in 8 32; do
    echo
    echo "== socket, in-memory reads: serai-load --clients $clients --mix quotes=100"
    "$bin/serai-load" --clients "$clients" --seconds "$seconds" --mix quotes=100
done
echo
echo "== socket, default mix: serai-load --clients 32"
"$bin/serai-load" --clients 32 --seconds "$seconds"

echo
echo "== memory: serai-socket-mem --sockets $sockets"
# Two descriptors per socket in this process (client side) and one per socket in the node.
ulimit -n "$(( sockets * 2 + 1024 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$bin/serai-socket-mem" --sockets "$sockets"

echo
echo "== world: serai-world-load --sockets $sockets --rounds 50 --clients 48 --seconds $seconds"
# The boss of a world event, scheduled for the run (its HP far beyond what 10 s can deal), each
# attack with its own request_id, as a client retrying safely sends it.
attack_payload='{"event_id":"{event_id}","character_id":"{character_id}","request_id":"{request_id}"}'
event_create='{"id":"{event_id}","kind":"boss","title":"Bench","max_hp":1000000000000,"starts_at":"{starts_at}","ends_at":"{ends_at}","reward_gold":1,"reward_item":null}'
world_args=(--sockets "$sockets" --rounds 50 --clients 48 --seconds "$seconds"
    --attack-rpc "${SERAI_BENCH_ATTACK_RPC:-attack_world_boss}"
    --attack-payload "${SERAI_BENCH_ATTACK_PAYLOAD:-$attack_payload}"
    --event-create "${SERAI_BENCH_EVENT_CREATE:-$event_create}")
"$bin/serai-world-load" "${world_args[@]}"

if [[ -n "${SERAI_BENCH_ONLY_TABLE:-}" ]]; then
    exit 0
fi
if [[ -z "${SERAI_BENCH_SKIP_FLUSH:-}" ]]; then
    echo
    echo "== flush benchmark (cargo bench --bench flush)"
    cargo bench --bench flush
fi
if [[ -z "${SERAI_BENCH_SKIP_RECEIPTS:-}" ]]; then
    echo
    echo "== receipts: serai-load --mode receipts --clients 16"
    "$bin/serai-load" --mode receipts --clients 16 --seconds "$seconds"
fi
if [[ -z "${SERAI_BENCH_SKIP_CLUSTER:-}" ]]; then
    echo
    echo "== cluster: serai-cluster-bench"
    "$bin/serai-cluster-bench"
fi
