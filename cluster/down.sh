#!/usr/bin/env bash
# Stops every node of the local cluster with SIGTERM (each drains: flush, release, leave)
# and waits for them to exit. The database is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
for pidfile in cluster/run/node-*.pid; do
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "$(basename "$pidfile" .pid) did not stop; killing"; kill -KILL "$pid"; }
  fi
  rm -f "$pidfile"
  echo "$(basename "$pidfile" .pid) stopped"
done
