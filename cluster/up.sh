#!/usr/bin/env bash
# Starts a local cluster: a local database (SERAI_DATABASE_URL, or PostgreSQL on 5432, or a
# throwaway server — see src/localdb/) and N serai nodes on 127.0.0.1 with distinct ports.
#   cluster/up.sh [N]        (default 3)
# Node i listens on clients 7350+10i, admin 7351+10i, peers 7352+10i; logs in
# cluster/run/node-i.log, pids in cluster/run/node-i.pid. Stop with cluster/down.sh; kill one
# node hard with cluster/kill.sh I.
#
# Secrets: a local cluster on 127.0.0.1 runs with the built-in default keys unless SERAI_*
# variables set them (SERAI_SERVER_KEY, SERAI_HTTP_KEY, SERAI_ADMIN_TOKEN, ...), so it sets
# SERAI_ALLOW_DEFAULT_SECRETS=true (`serai node` refuses default secrets without it);
# SERAI_ALLOW_DEFAULT_SECRETS=false makes the nodes refuse them as in production.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-3}"
run=cluster/run
mkdir -p "$run"
cargo build --release --quiet --bin serai
bin=target/release/serai

if [ -z "${SERAI_DATABASE_URL:-}" ]; then
  # `serai dev` finds or starts the local database; ask it for the URL without starting a node.
  url=$("$bin" dev --database-only 2>/dev/null | tail -1)
  export SERAI_DATABASE_URL="${url:?could not find or start a local database}"
fi
echo "database: $SERAI_DATABASE_URL"
export SERAI_ALLOW_DEFAULT_SECRETS="${SERAI_ALLOW_DEFAULT_SECRETS:-true}"
"$bin" migrate >/dev/null

for i in $(seq 0 $((n - 1))); do
  if [ -f "$run/node-$i.pid" ] && kill -0 "$(cat "$run/node-$i.pid")" 2>/dev/null; then
    echo "node-$i already running (pid $(cat "$run/node-$i.pid"))"
    continue
  fi
  SERAI_NODE_ID="node-$i" \
  SERAI_CLIENT_ADDR="127.0.0.1:$((7350 + 10 * i))" \
  SERAI_ADMIN_ADDR="127.0.0.1:$((7351 + 10 * i))" \
  SERAI_PEER_ADDR="127.0.0.1:$((7352 + 10 * i))" \
    nohup "$bin" node >"$run/node-$i.log" 2>&1 &
  echo $! >"$run/node-$i.pid"
  echo "node-$i: pid $!, client http://127.0.0.1:$((7350 + 10 * i)), admin http://127.0.0.1:$((7351 + 10 * i))"
done

for i in $(seq 0 $((n - 1))); do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$((7351 + 10 * i))/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
done
echo "cluster of $n up; server key: ${SERAI_SERVER_KEY:-defaultkey}," \
  "HTTP key: ${SERAI_HTTP_KEY:-defaulthttpkey}, admin token: ${SERAI_ADMIN_TOKEN:-defaultadmintoken}"
