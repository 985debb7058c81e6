#!/usr/bin/env bash
# Runs the whole test suite: unit, property, SoftHSM, SQLite and end-to-end tests (the real
# daemon on loopback, checked with openssl, python cryptography, pkilint and pkcs11-tool).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --all-features --no-fail-fast "$@"
else
  cargo test --locked --workspace --all-features --no-fail-fast "$@"
fi
