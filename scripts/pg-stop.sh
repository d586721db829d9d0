#!/usr/bin/env bash
# Stops the throwaway PostgreSQL that `serai dev` and the tests start (see src/localdb/).
#   scripts/pg-stop.sh            stop it; its data stays for the next run
#   scripts/pg-stop.sh --purge    stop it and delete its directory
# It lives in .serai/pg, or (as root, when the postgres user cannot reach this checkout)
# in /tmp/serai-pg-<uid>.
set -euo pipefail
cd "$(dirname "$0")/.."

purge=
case "${1:-}" in
    --purge) purge=1 ;;
    "") ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

find_pg_ctl() {
    # The pg_ctl matching the cluster's version, else any.
    local version=$1 candidate
    for candidate in "/usr/lib/postgresql/$version/bin/pg_ctl" "/usr/pgsql-$version/bin/pg_ctl"; do
        [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
    command -v pg_ctl 2>/dev/null && return
    for candidate in /usr/lib/postgresql/*/bin/pg_ctl; do
        [ -x "$candidate" ] && { echo "$candidate"; return; }
    done
    return 1
}

as_owner() {
    # pg_ctl refuses root: run it as the owner of the data directory.
    local owner=$1; shift
    if [ "$(id -u)" != 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$owner" -- "$@"
    else
        su -s /bin/sh -c 'exec "$0" "$@"' -- "$owner" "$@"
    fi
}

found=
for dir in "$PWD/.serai/pg" "${TMPDIR:-/tmp}/serai-pg-$(id -u)"; do
    data="$dir/data"
    [ -d "$data" ] || continue
    found=1
    if [ -f "$data/postmaster.pid" ]; then
        pg_ctl=$(find_pg_ctl "$(cat "$data/PG_VERSION" 2>/dev/null)") || {
            echo "pg-stop: no pg_ctl found to stop the server in $data" >&2
            exit 1
        }
        as_owner "$(stat -c %U "$data")" "$pg_ctl" -D "$data" -m fast -w stop || true
    else
        echo "pg-stop: not running: $data"
    fi
    if [ -n "$purge" ]; then
        rm -rf "$dir"
        echo "pg-stop: removed $dir"
    fi
done
[ -n "$found" ] || echo "pg-stop: no throwaway PostgreSQL here"
