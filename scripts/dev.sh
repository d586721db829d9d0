#!/usr/bin/env bash
# The README's run command: one node plus a local database, for development.
#   scripts/dev.sh                   build (release) and run `serai dev`
#   scripts/dev.sh --config FILE     arguments go to `serai dev`
#
# Installs PostgreSQL's server binaries first when they are missing (scripts/lib/deps.sh:
# apt-get as root or through passwordless sudo, else it prints what to install and stops).
# `serai dev` then starts or reuses the throwaway database in .serai/pg (src/localdb/),
# migrates it and runs the node; it prints the client and admin URLs, every key it uses (server
# key, HTTP key, admin token, cluster secret, session and refresh keys: the built-in defaults
# unless SERAI_* variables or --config set them), a nakama-js snippet that connects with them,
# and how to stop. A second run reuses both the binaries and the database.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
deps_ensure run

exec cargo run --release --quiet --bin serai -- dev "$@"
