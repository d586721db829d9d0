#!/usr/bin/env bash
# Runs the whole test suite: every target (lib, bin, integration tests, benches in test
# mode) and the doc tests. Extra arguments go to both cargo invocations, e.g.
#   scripts/test.sh -- --nocapture
# Arguments that pick targets (--test NAME, --lib, --doc, ...) run just those, in one
# `cargo test`, e.g.
#   scripts/test.sh --test cli
#
# Set-up first (scripts/lib/deps.sh): PostgreSQL's server binaries, node and npm, the
# client tests' npm packages, and kubernetes-validate (pip, into .serai/k8s-venv, for
# scripts/k8s-check.sh) are installed when missing (apt-get as root or through passwordless
# sudo, else it prints what to install and stops); nothing when present.
#
# Needs no database setup: SERAI_DATABASE_URL if set, else PostgreSQL on 127.0.0.1:5432,
# else a throwaway PostgreSQL in .serai/pg started from the system's binaries
# (see src/localdb/; scripts/pg-stop.sh stops it).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
deps_ensure test

picks_targets=
for arg in "$@"; do
    case "$arg" in
        --) break ;;
        --lib | --bins | --bin | --bin=* | --examples | --example | --example=* | --tests | \
            --test | --test=* | --benches | --bench | --bench=* | --all-targets | --doc)
            picks_targets=1 ;;
    esac
done

if [ -n "$picks_targets" ]; then
    exec cargo test "$@"
fi
cargo test --all-targets "$@"
cargo test --doc "$@"
