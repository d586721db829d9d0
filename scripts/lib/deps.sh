#!/usr/bin/env bash
# What the README's two commands need beyond the Rust toolchain, found or installed.
#
#   . scripts/lib/deps.sh && deps_ensure test    (scripts/test.sh)
#   . scripts/lib/deps.sh && deps_ensure run     (scripts/dev.sh)
#   bash scripts/lib/deps.sh test|run            the same, as a command
#
# It checks first and installs only what is missing, so a second run installs nothing and
# costs a few `command -v`s. Missing system packages are installed with apt-get (after one
# `apt-get update`) as root, or through `sudo -n` when sudo works without a password;
# otherwise it prints the apt-get command to run and fails. It never reads standard input.
#
#   test: PostgreSQL server binaries (initdb, pg_ctl; apt: postgresql), node 18+ and npm
#         (apt: nodejs npm), the npm packages of the client tests in clients/js (`npm ci`,
#         as the current user), promtool (apt: prometheus; tests/monitoring.rs checks the
#         metrics and the alert rules with it), and kubernetes-validate (pinned below) in a
#         Python venv in .serai/k8s-venv (pip, from a python3 with venv; apt: python3
#         python3-venv) for the manifest check (scripts/k8s-check.sh, tests/k8s_manifests.rs),
#         and chromium (apt: chromium; tests/browser_cors.rs opens a nakama-js page in it,
#         headless).
#   run:  PostgreSQL server binaries only.
# The PostgreSQL binaries are skipped when SERAI_DATABASE_URL is set or a server answers on
# 127.0.0.1:5432 (src/localdb/ uses those first).
#
# Optional tools are listed below; DEPS_WANT names those the tests need (a tool left out of
# it is only noted when missing; SERAI_DEPS_WANT adds names for one run).
#
# Injection points (the defaults are the real machine; tests/setup_script.rs replaces them):
#   SERAI_APT_GET          apt-get command                     (default: apt-get)
#   SERAI_SUDO             sudo command                        (default: sudo)
#   SERAI_AS_ROOT          1/0: act as root or not              (default: from $EUID)
#   SERAI_PG_DIRS          directories holding initdb/pg_ctl besides PATH (globs allowed;
#                          default: src/localdb/binaries.rs's list)
#   SERAI_PG_PROBE         host:port probed for a running server, "none" to skip
#                          (default: 127.0.0.1:5432)
#   SERAI_NPM_DIR          the npm project of the client tests  (default: clients/js)
#   SERAI_PYTHON           python3 command                       (default: python3)
#   SERAI_K8S_VENV         the venv holding kubernetes-validate  (default: .serai/k8s-venv)
#   SERAI_DEPS_WANT        optional tools to treat as required: promtool, chromium
#   SERAI_DEPS=skip        check nothing (a machine set up some other way)

# Optional tools the tests need: promtool (tests/monitoring.rs), chromium
# (tests/browser_cors.rs; the page reports back over HTTP, so no chromedriver is needed).
DEPS_WANT="promtool chromium"
# The manifest validator, pinned: its schemas (Kubernetes 1.37 and older) ship inside it.
DEPS_K8S_VALIDATE="kubernetes-validate==1.37.0"

deps_log() { echo "deps: $*" >&2; }

# --- detection ----------------------------------------------------------------------------

deps_have() { command -v "$1" >/dev/null 2>&1; }

deps_pg_dirs() {
    local spec=${SERAI_PG_DIRS-/usr/lib/postgresql/*/bin /usr/pgsql-*/bin /usr/local/pgsql/bin}
    local pattern dir
    for pattern in $spec; do
        for dir in $pattern; do
            [ -d "$dir" ] && echo "$dir"
        done
    done
}

deps_pg_binaries() {
    deps_have initdb && deps_have pg_ctl && return 0
    local dir
    while IFS= read -r dir; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && return 0
    done < <(deps_pg_dirs)
    return 1
}

deps_pg_answers() {
    local probe=${SERAI_PG_PROBE:-127.0.0.1:5432}
    [ "$probe" = none ] && return 1
    (exec 3<>"/dev/tcp/${probe%:*}/${probe##*:}") 2>/dev/null
}

deps_pg_needed() {
    [ -z "${SERAI_DATABASE_URL:-}" ] && ! deps_pg_answers
}

deps_npm_dir() { echo "${SERAI_NPM_DIR:-$DEPS_ROOT/clients/js}"; }

# Every dependency of package.json installed in node_modules at exactly its pinned version
# (what tests/nakama_js.rs checks before it runs `npm ci` itself). Plain bash: no node needed.
deps_npm_packages_present() {
    local dir line name version in_deps=
    dir=$(deps_npm_dir)
    [ -f "$dir/package.json" ] || return 0
    while IFS= read -r line; do
        if [ -z "$in_deps" ]; then
            [[ $line =~ \"dependencies\"[[:space:]]*:[[:space:]]*\{ ]] && in_deps=1
            continue
        fi
        [[ $line =~ \} ]] && break
        [[ $line =~ \"([^\"]+)\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]] || continue
        name=${BASH_REMATCH[1]} version=${BASH_REMATCH[2]}
        deps_installed_version "$dir/node_modules/$name/package.json" "$version" || return 1
    done <"$dir/package.json"
    return 0
}

deps_installed_version() {
    local file=$1 want=$2 line
    [ -f "$file" ] || return 1
    while IFS= read -r line; do
        if [[ $line =~ ^[[:space:]]*\"version\"[[:space:]]*:[[:space:]]*\"([^\"]+)\" ]]; then
            [ "${BASH_REMATCH[1]}" = "$want" ]
            return
        fi
    done <"$file"
    return 1
}

deps_chromium() { deps_have chromium || deps_have chromium-browser; }

deps_k8s_venv() { echo "${SERAI_K8S_VENV:-$DEPS_ROOT/.serai/k8s-venv}"; }

# The validator installed at its pinned version: deps_k8s_install writes the pin into the venv
# after pip succeeded (plain bash: no python run needed to check).
deps_k8s_present() {
    local venv pin=
    venv=$(deps_k8s_venv)
    [ -x "$venv/bin/kubernetes-validate" ] && [ -x "$venv/bin/python" ] || return 1
    read -r pin <"$venv/serai-pin" 2>/dev/null
    [ "$pin" = "$DEPS_K8S_VALIDATE" ]
}

# A python3 that can make a venv with pip (Debian splits venv/ensurepip into python3-venv).
deps_python_venv() {
    local py=${SERAI_PYTHON:-python3}
    deps_have "$py" && "$py" -c 'import venv, ensurepip' </dev/null >/dev/null 2>&1
}

# --- installing ---------------------------------------------------------------------------

deps_as_root() {
    case "${SERAI_AS_ROOT:-}" in
        1) return 0 ;;
        0) return 1 ;;
        *) [ "${EUID:-1}" = 0 ] ;;
    esac
}

# How to run apt-get as root here: sets DEPS_PRIV to "" (root) or the sudo command; fails
# when neither works.
deps_privilege() {
    if deps_as_root; then
        DEPS_PRIV=
        return 0
    fi
    local sudo=${SERAI_SUDO:-sudo}
    if deps_have "$sudo" && "$sudo" -n true </dev/null >/dev/null 2>&1; then
        DEPS_PRIV=$sudo
        return 0
    fi
    return 1
}

deps_apt() {
    if [ -n "$DEPS_PRIV" ]; then
        "$DEPS_PRIV" -n env DEBIAN_FRONTEND=noninteractive "$DEPS_APT" "$@" </dev/null
    else
        DEBIAN_FRONTEND=noninteractive "$DEPS_APT" "$@" </dev/null
    fi
}

deps_apt_install() {
    deps_log "installing with apt-get${DEPS_PRIV:+ (through $DEPS_PRIV -n)}: $*"
    deps_apt update -q >&2 || { deps_log "apt-get update failed"; return 1; }
    deps_apt install -y -q --no-install-recommends "$@" >&2 || {
        deps_log "apt-get install $* failed"
        return 1
    }
}

deps_npm_ci() {
    local dir
    dir=$(deps_npm_dir)
    deps_log "installing the client tests' npm packages: npm ci in $dir"
    (cd "$dir" && SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund \
        --prefer-offline </dev/null >&2) || { deps_log "npm ci in $dir failed"; return 1; }
}

deps_k8s_install() {
    local venv py=${SERAI_PYTHON:-python3}
    venv=$(deps_k8s_venv)
    deps_log "installing $DEPS_K8S_VALIDATE into the venv $venv (pip)"
    "$py" -m venv "$venv" </dev/null >&2 || { deps_log "$py -m venv $venv failed"; return 1; }
    "$venv/bin/pip" install -q --disable-pip-version-check --no-input "$DEPS_K8S_VALIDATE" \
        </dev/null >&2 || { deps_log "pip install $DEPS_K8S_VALIDATE failed"; return 1; }
    echo "$DEPS_K8S_VALIDATE" >"$venv/serai-pin"
}

# --- the entry point ----------------------------------------------------------------------

# deps_ensure test|run: everything present afterwards, or a message naming what to install
# and a non-zero status.
deps_ensure() {
    local purpose=${1:-test}
    case "$purpose" in
        test | run) ;;
        *) deps_log "usage: deps_ensure test|run"; return 2 ;;
    esac
    [ "${SERAI_DEPS:-}" = skip ] && return 0
    DEPS_APT=${SERAI_APT_GET:-apt-get}
    local want=" $DEPS_WANT ${SERAI_DEPS_WANT:-} "
    local -a packages=() missing=()
    local npm_packages= k8s_validate=

    if deps_pg_needed && ! deps_pg_binaries; then
        missing+=("PostgreSQL server binaries (initdb, pg_ctl)")
        packages+=(postgresql)
    fi
    if [ "$purpose" = test ]; then
        if ! deps_have node; then
            missing+=(node)
            packages+=(nodejs)
        fi
        if ! deps_have npm; then
            missing+=(npm)
            packages+=(npm)
        fi
        deps_npm_packages_present || npm_packages=1
        if ! deps_k8s_present; then
            k8s_validate=1
            if ! deps_python_venv; then
                missing+=("python3 with venv")
                packages+=(python3 python3-venv)
            fi
        fi
        if ! deps_have promtool; then
            if [[ $want == *" promtool "* ]]; then
                missing+=(promtool)
                packages+=(prometheus)
            else
                deps_log "note: no promtool (optional here; apt: prometheus)"
            fi
        fi
        if ! deps_chromium; then
            if [[ $want == *" chromium "* ]]; then
                missing+=(chromium)
                packages+=(chromium)
            else
                deps_log "note: no chromium (optional here; apt: chromium)"
            fi
        fi
    fi

    if [ ${#packages[@]} -gt 0 ]; then
        local list="" item
        for item in "${missing[@]}"; do list+="${list:+, }$item"; done
        deps_log "missing: $list"
        if ! deps_have "$DEPS_APT" || ! deps_privilege; then
            local why="not root and no passwordless sudo"
            deps_have "$DEPS_APT" || why="no apt-get here"
            deps_log "$why: install them yourself, then run this again:"
            echo "  sudo apt-get install ${packages[*]}" >&2
            if [ -n "$npm_packages" ] || [[ " ${packages[*]} " == *" npm "* ]]; then
                deps_log "(the client tests' npm packages then install by themselves: npm ci in $(deps_npm_dir))"
            fi
            if [ -n "$k8s_validate" ]; then
                deps_log "(kubernetes-validate then installs by itself: pip, in $(deps_k8s_venv))"
            fi
            return 1
        fi
        deps_apt_install "${packages[@]}" || return 1
        hash -r
        if [[ " ${packages[*]} " == *" postgresql "* ]] && ! deps_pg_binaries; then
            deps_log "postgresql installed but no initdb/pg_ctl found on PATH or under" \
                "${SERAI_PG_DIRS-/usr/lib/postgresql/*/bin}"
            return 1
        fi
    fi

    if [ "$purpose" = test ]; then
        local version
        version=$(node --version 2>/dev/null </dev/null) || version=
        version=${version#v}
        if [[ ${version%%.*} =~ ^[0-9]+$ ]] && [ "${version%%.*}" -lt 18 ]; then
            deps_log "warning: node $version is older than 18: the client tests need 18+"
        fi
        if [ -n "$npm_packages" ]; then
            deps_npm_ci || return 1
        fi
        if [ -n "$k8s_validate" ]; then
            deps_k8s_install || return 1
        fi
    fi
    return 0
}

# The checkout: two levels above this file (no `dirname`: tests run this with a bare PATH).
DEPS_ROOT=${BASH_SOURCE[0]%/*}
[ "$DEPS_ROOT" = "${BASH_SOURCE[0]}" ] && DEPS_ROOT=.
DEPS_ROOT=$(cd "$DEPS_ROOT/../.." && pwd)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    deps_ensure "${1:-test}"
fi
