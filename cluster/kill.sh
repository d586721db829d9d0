#!/usr/bin/env bash
# Kills node I of the local cluster with SIGKILL (no drain: a crash), for failover tests.
#   cluster/kill.sh I
set -euo pipefail
cd "$(dirname "$0")/.."
i="${1:?usage: cluster/kill.sh I}"
pidfile="cluster/run/node-$i.pid"
[ -f "$pidfile" ] || { echo "node-$i is not running" >&2; exit 1; }
kill -KILL "$(cat "$pidfile")"
rm -f "$pidfile"
echo "node-$i killed"
