#!/usr/bin/env bash
# A fault campaign against the real binary (issues 9 and 10): 3 `serai node` processes on a
# fresh PostgreSQL database, 30 clients trading (half HTTP, half socket) with a `request_id` on
# every state-changing request, and a schedule of faults: SIGKILL, SIGSTOP 10 s, a rolling
# drain, the database down 30 s, one node's peer links cut. Then a checker compares what the
# clients were told with the database and prints PASS or FAIL (exit 0 / 1; 2 = could not run).
#
#   scripts/faults.sh                          the full schedule (about 4 minutes)
#   scripts/faults.sh --short                  the CI profile: SIGKILL, SIGSTOP 7 s, one drain
#   scripts/faults.sh --faults kill,partition --clients 10
#   scripts/faults.sh --help                   every option
#   SERAI_FAULTS_PROFILE=dev scripts/faults.sh --short    debug build (no release compile)
#
# The database is found as for the tests (SERAI_DATABASE_URL, else 127.0.0.1:5432, else a
# throwaway server; see README, "Database"); each run creates its own and drops it
# (--keep-db keeps it). Node logs go to the directory printed at start.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${SERAI_FAULTS_PROFILE:-release}"
case "$profile" in
  dev | debug) profile=dev; dir=debug ;;
  *) dir="$profile" ;;
esac
cargo build --quiet --profile "$profile" --bin serai --bin serai-faults
exec "target/$dir/serai-faults" --serai-bin "target/$dir/serai" "$@"
