#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, on a clean machine.
# Installs only when something is missing, and only as root with apt-get; otherwise it
# says what is missing and carries on (the tests then report what they lack).
set -euo pipefail
cd "$(dirname "$0")/.."

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

APT_UPDATED=
apt_install() {
    if [ -z "$APT_UPDATED" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- Rust components --------------------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
fi

# --- PostgreSQL -------------------------------------------------------------------------
# Needed only when there is no SERAI_DATABASE_URL and nothing answers on 127.0.0.1:5432:
# then the tests start a throwaway server from initdb/pg_ctl (PATH or
# /usr/lib/postgresql/*/bin).
pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
pg_binaries() {
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
if [ -z "${SERAI_DATABASE_URL:-}" ] && ! pg_answers && ! pg_binaries; then
    if can_apt; then
        echo "ci-deps: installing postgresql" >&2
        apt_install postgresql
    else
        echo "ci-deps: no PostgreSQL: install it (Debian/Ubuntu: apt-get install postgresql) or set SERAI_DATABASE_URL" >&2
    fi
fi

# --- Node.js + npm (HOOK) ---------------------------------------------------------------
# The client-compatibility tests drive the server with the official @heroiclabs/nakama-js
# client, which needs node and npm. Extend this block with whatever those tests need
# (e.g. `npm ci` in their directory).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if can_apt; then
        echo "ci-deps: installing nodejs and npm" >&2
        apt_install nodejs npm
    else
        echo "ci-deps: node/npm missing: install them (Debian/Ubuntu: apt-get install nodejs npm)" >&2
    fi
fi
