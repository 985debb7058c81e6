#!/usr/bin/env bash
# Runs the daemon on the embedded defaults: data in ./.mandate (SQLite file, SoftHSM dev token
# created on first start), listening on 127.0.0.1:8080, bootstrap admin key in ./.mandate/admin.key.
# MANDATE_CONFIG / --config FILE and MANDATE_* variables override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
exec cargo run --release --locked -p mandate-ca --bin mandate -- "${@:-serve}"
