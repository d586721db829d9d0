#!/usr/bin/env bash
# Kept for old habits: the set-up now lives in scripts/lib/deps.sh and scripts/test.sh runs
# it by itself (so does .ci/run, through scripts/test.sh). This only runs that set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/lib/deps.sh test
