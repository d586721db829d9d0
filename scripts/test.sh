#!/usr/bin/env bash
# Runs the whole test suite: every target (lib, bin, integration tests, benches in test
# mode) and the doc tests. Extra arguments go to both cargo invocations, e.g.
#   scripts/test.sh -- --nocapture
#
# Needs no database setup: SERAI_DATABASE_URL if set, else PostgreSQL on 127.0.0.1:5432,
# else a throwaway PostgreSQL in .serai/pg started from the system's binaries
# (see src/localdb.rs; scripts/pg-stop.sh stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --all-targets "$@"
cargo test --doc "$@"
