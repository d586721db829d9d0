#!/usr/bin/env bash
# The README's run command: one node plus a local database, for development.
#   scripts/dev.sh                   build (release) and run `serai dev`
#   scripts/dev.sh --config FILE     arguments go to `serai dev`
#
# Installs PostgreSQL's server binaries first when they are missing (scripts/lib/deps.sh:
# apt-get as root or through passwordless sudo, else it prints what to install and stops).
# `serai dev` then starts or reuses the throwaway database in .serai/pg (src/localdb/),
# migrates it and runs the node; it prints the client URL, server key, admin URL and token.
# This adds the HTTP key, a nakama-js snippet and how to stop. A second run reuses both the
# binaries and the database.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/deps.sh
deps_ensure run

cargo build --release --bin serai

client=${SERAI_CLIENT_ADDR:-127.0.0.1:7350}
server_key=${SERAI_SERVER_KEY:-defaultkey}
host=${client%:*} port=${client##*:}
from="SERAI_* environment or the defaults"
for arg in "$@"; do
    case "$arg" in -c | --config | --config=*) from="$from; a --config file may change them" ;; esac
done
cat <<INFO

serai dev: keys below from the $from
  HTTP key:     ${SERAI_HTTP_KEY:-defaulthttpkey}   (server-to-server RPCs: ?http_key=)
  nakama-js:    (Node 18+; the packages once: cd clients/js && npm ci --ignore-scripts)
    cd clients/js && node --input-type=module -e '
      import { Client } from "@heroiclabs/nakama-js";
      const client = new Client("$server_key", "$host", "$port", false);
      const session = await client.authenticateDevice("dev-device-0001", true);
      console.log(await client.getAccount(session));'
  stop:         Ctrl-C stops the node (it drains and exits);
                scripts/pg-stop.sh stops the local database (--purge also deletes it)

INFO
exec cargo run --release --quiet --bin serai -- dev "$@"
