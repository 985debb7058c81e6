#!/usr/bin/env bash
# Installs what mandate needs when it is missing. Usage: scripts/deps.sh run|test
# run:  SoftHSM2 (the dev token's PKCS#11 module).
# test: also opensc (pkcs11-tool), openssl, poppler-utils and qpdf (PDF checks), PostgreSQL
#       (server and psql), Chromium and ChromeDriver (the dashboard's browser tests drive
#       /usr/bin/chromium over WebDriver), and python `cryptography`, `pkilint` and
#       `prometheus_client` and `asn1tools` (independent checkers the tests call), and the Python
#       client of clients/python (editable) with pytest, and freqtrade (the example's test),
#       and the ACME clients certbot (PyPI, in its own venv: ~/.cache/mandate-tools/certbot)
#       and lego (Debian), and Kryoptic, the second PKCS#11 token the hsm and end-to-end suites
#       run on (built from its crates.io source into ~/.cache/mandate-tools/kryoptic).
set -euo pipefail
what="${1:-run}"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "need root to install: $*" >&2; exit 1; fi; }

# Kryoptic (https://crates.io/crates/kryoptic): a PKCS#11 soft token in Rust on OpenSSL 3, the
# tests' second token. crates.io ships its source only (a cdylib, which `cargo install` cannot
# install), so it is built here once, with its own Cargo.lock. Features: `minimal` (SQLite
# storage, RSA, ECDSA, SHA-2, HMAC: all mandate uses) and `dynamic` (the system's OpenSSL; the
# default `standard` set wants OpenSSL 3.2 for EdDSA, and Debian 12 has 3.0).
kryoptic_version=1.5.4
kryoptic_features=minimal,kryoptic-lib/dynamic
kryoptic_dir="$HOME/.cache/mandate-tools/kryoptic"
kryoptic_stamp="$kryoptic_version $kryoptic_features"
kryoptic_built() {
  [ -f "$kryoptic_dir/libkryoptic_pkcs11.so" ] \
    && [ "$(cat "$kryoptic_dir/BUILT" 2>/dev/null)" = "$kryoptic_stamp" ]
}
build_kryoptic() {
  echo "building Kryoptic $kryoptic_version into $kryoptic_dir (a minute or two) ..." >&2
  local work src
  work=$(mktemp -d /tmp/mandate-build-kryoptic.XXXXXX)
  # A throw-away package that depends on it makes cargo fetch the source and name its path.
  mkdir -p "$work/fetch/src"
  : > "$work/fetch/src/lib.rs"
  printf '%s\n' '[package]' 'name = "kryoptic-fetch"' 'version = "0.0.0"' 'edition = "2024"' \
    'publish = false' '' '[dependencies]' \
    "kryoptic = { version = \"=$kryoptic_version\", default-features = false }" '' '[workspace]' \
    > "$work/fetch/Cargo.toml"
  src=$(cargo metadata --quiet --format-version 1 --manifest-path "$work/fetch/Cargo.toml" \
    | python3 -c 'import json, sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == "kryoptic"))')
  cp -r "$(dirname "$src")" "$work/kryoptic"
  # The project's own flags are not Kryoptic's (a -D warnings would fail a foreign crate).
  (cd "$work/kryoptic" && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_TARGET \
    cargo build --quiet --release --locked --no-default-features \
      --features "$kryoptic_features" --target-dir "$work/target")
  mkdir -p "$kryoptic_dir"
  cp "$work/target/release/libkryoptic_pkcs11.so" "$kryoptic_dir/libkryoptic_pkcs11.so.tmp"
  mv "$kryoptic_dir/libkryoptic_pkcs11.so.tmp" "$kryoptic_dir/libkryoptic_pkcs11.so"
  echo "$kryoptic_stamp" > "$kryoptic_dir/BUILT"
  rm -rf "$work"
}

missing=()
softhsm_found() {
  for p in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
           /usr/lib64/softhsm/libsofthsm2.so /usr/lib64/pkcs11/libsofthsm2.so \
           /usr/local/lib/softhsm/libsofthsm2.so; do [ -e "$p" ] && return 0; done
  return 1
}
softhsm_found || missing+=(softhsm2)
if [ "$what" = test ]; then
  command -v pkcs11-tool >/dev/null || missing+=(opensc)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v python3 >/dev/null || missing+=(python3 python3-pip)
  command -v pdftoppm >/dev/null || missing+=(poppler-utils)
  command -v qpdf >/dev/null || missing+=(qpdf)
  # A real PostgreSQL server on loopback: the suite's second pass, and the multi-node tests.
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v psql >/dev/null || missing+=(postgresql-client)
  command -v runuser >/dev/null || missing+=(util-linux)
  # Headless Chromium and its WebDriver server: the dashboard's end-to-end tests.
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  # ACME clients the profile tests drive (certbot comes from PyPI below).
  command -v lego >/dev/null || missing+=(lego)
  # Kryoptic's build needs, only while it is not built yet (below): OpenSSL 3 and SQLite
  # headers, pkg-config, and libclang for bindgen.
  if ! kryoptic_built; then
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    pkg-config --exists openssl 2>/dev/null || missing+=(libssl-dev)
    pkg-config --exists sqlite3 2>/dev/null || missing+=(libsqlite3-dev)
    { compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' && compgen -G '/usr/lib/llvm-*/lib/clang/*/include/stddef.h'; } \
      >/dev/null || missing+=(libclang-dev)
  fi
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$what" = test ]; then
  kryoptic_built || build_kryoptic
  # The Python client (editable, with pytest) for its own tests.
  if ! python3 -c 'import mandate_client, pytest' 2>/dev/null; then
    echo "installing the python client (clients/python) with pytest ..." >&2
    python3 -m pip install -q -e "$(dirname "$0")/../clients/python[test]" 2>/dev/null \
      || python3 -m pip install -q --break-system-packages -e "$(dirname "$0")/../clients/python[test]"
  fi
  # Freqtrade (its wheels bundle TA-Lib's C library): the Freqtrade example's test imports it.
  # Pinned to the version whose IStrategy callbacks the example was checked against.
  if ! python3 -c 'import freqtrade' 2>/dev/null; then
    echo "installing freqtrade ..." >&2
    python3 -m pip install -q freqtrade==2026.9 2>/dev/null \
      || python3 -m pip install -q --break-system-packages freqtrade==2026.9
  fi
  # certbot >= 4 speaks ACME profiles (--preferred-profile); Debian's is older. Its own venv
  # keeps its pins away from freqtrade's.
  certbot_venv="$HOME/.cache/mandate-tools/certbot"
  if ! "$certbot_venv/bin/certbot" --version >/dev/null 2>&1; then
    echo "installing certbot 5.8.0 into $certbot_venv ..." >&2
    python3 -m venv "$certbot_venv"
    "$certbot_venv/bin/pip" install -q certbot==5.8.0
  fi
  if ! python3 -c 'import cryptography, pkilint, prometheus_client, asn1tools, openapi_spec_validator' 2>/dev/null; then
    echo "installing python cryptography, pkilint, prometheus_client, asn1tools and openapi-spec-validator ..." >&2
    python3 -m pip install -q cryptography pkilint prometheus_client asn1tools openapi-spec-validator==0.9.0 2>/dev/null \
      || python3 -m pip install -q --break-system-packages cryptography pkilint prometheus_client asn1tools openapi-spec-validator==0.9.0
  fi
fi
