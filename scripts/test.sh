#!/usr/bin/env bash
# Runs the whole test suite: unit, property, HSM (SoftHSM2 and Kryoptic), SQLite and end-to-end
# tests (the real daemon on loopback, checked with openssl, python cryptography, pkilint and
# pkcs11-tool; the dashboard in Chromium), the Python client's pytest suite against the daemon,
# then the store and end-to-end tests again on a real PostgreSQL server started here on loopback.
# Extra arguments go to both nextest runs (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
# The layering: adapters write nothing to the store; domain code imports no web layer.
python3 scripts/check_layers.py
# The mandate extension's ASN.1 module against the DER the policy crate writes (asn1tools).
python3 scripts/check_asn1.py
if cargo nextest --version >/dev/null 2>&1; then
  run() { cargo nextest run --locked --no-fail-fast "$@"; }
else
  run() { cargo test --locked --no-fail-fast "$@"; }
fi

# 1. Everything, on SQLite (the multi-node tests start PostgreSQL servers of their own). Every
#    answer the end-to-end tests get is validated against the API document; each checked
#    answer's operation and status go to $hits.
hits=$(mktemp /tmp/mandate-contract-hits.XXXXXX)
MANDATE_CONTRACT_HITS=$hits run --workspace --all-features "$@"
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

# 1a. The API document the daemon serves (generated from the code) is valid OpenAPI 3.1
#     (openapi-spec-validator), and the whole suite saw every operation in it succeed and refuse.
document=$(mktemp /tmp/mandate-openapi.XXXXXX.json)
"$target_dir/debug/mandate" openapi > "$document"
python3 -c 'import sys; from openapi_spec_validator import validate; from openapi_spec_validator.readers import read_from_filename; validate(read_from_filename(sys.argv[1])[0]); print("the API document: valid OpenAPI 3.1")' "$document"
if [ "$#" = 0 ]; then
  python3 scripts/contract_coverage.py "$document" "$hits"
fi
rm -f "$document" "$hits"

# 1b. The Python client (clients/python) and its Freqtrade example, against the daemon binary
#     the run above built (SoftHSM, SQLite, loopback).
(cd clients/python && MANDATE_BIN="$target_dir/debug/mandate" python3 -m pytest -q -p no:cacheprovider)

# 2. The store and the end-to-end suite on PostgreSQL. Left out: the multi-node tests, which
#    already ran on servers of their own, and the one test about a lost SQLite file.
pgdir=$(mktemp -d /tmp/mandate-test-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
MANDATE_TEST_PG_URL=$(scripts/pg.sh start "$pgdir" "$port")
export MANDATE_TEST_PG_URL
sqlite_only='test(/^cluster::/) | test(=lifecycle::a_lost_database_never_leads_to_a_silent_second_ceremony)'
# A server that stops answering (a crash, a full disk) fails every test after it: its log says why.
pg_report() {
  df -h "$pgdir" >&2 || true
  echo "--- the last lines of the test PostgreSQL server's log ---" >&2
  tail -n 40 "$pgdir/server.log" >&2 || true
}
trap 'status=$?; [ "$status" = 0 ] || pg_report; scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
df -h "$pgdir" >&2 || true
if cargo nextest --version >/dev/null 2>&1; then
  # Same packages and features as the first run, so nothing is rebuilt.
  run --workspace --all-features -E "(binary(backends) | binary(upgrade) | binary(e2e)) and not ($sqlite_only)" "$@"
else
  run -p mandate-store --test backends "$@"
  run -p mandate-store --test upgrade "$@"
  run -p mandate-ca --test e2e "$@"
fi
