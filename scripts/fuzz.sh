#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after the other.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 600); TARGETs default to all of fuzz/fuzz_targets/*.rs.
# Seeds from fuzz/seeds/<target>/ are copied into fuzz/corpus/<target>/ first (the corpus
# grows across runs and is not committed). Prints, per target, the seconds run, libFuzzer's
# total executions and whether it crashed; exits non-zero if any target crashed, naming the
# artifact. One input running longer than FUZZ_TIMEOUT seconds (default 10; libFuzzer's own is
# 1200, longer than a whole run) counts as a crash: a hang. Extra libFuzzer flags can be passed
# in FUZZ_ARGS (e.g. FUZZ_ARGS="-rss_limit_mb=4096").
# Works from any directory. Needs a nightly toolchain, or falls back to RUSTC_BOOTSTRAP=1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"

seconds="${1:-600}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi
shift || true

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in "$fuzz_dir"/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi
for t in "${targets[@]}"; do
    if [ ! -f "$fuzz_dir/fuzz_targets/$t.rs" ]; then
        echo "unknown target $t (have: $(cd "$fuzz_dir/fuzz_targets" && ls ./*.rs | sed 's|^\./||; s|\.rs$||' | tr '\n' ' '))" >&2
        exit 2
    fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz needs nightly-only rustc flags (sanitizers, coverage instrumentation).
if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^nightly'; then
    cargo_fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    cargo_fuzz=(cargo fuzz)
fi

cd "$fuzz_dir"
# Build first, so that the time of each run below is fuzzing only.
for t in "${targets[@]}"; do
    "${cargo_fuzz[@]}" build "$t"
done

logs="$fuzz_dir/artifacts/logs"
mkdir -p "$logs"
summary=()
failed=0
for t in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$t"
    mkdir -p "$corpus" "$fuzz_dir/artifacts/$t"
    if [ -d "$fuzz_dir/seeds/$t" ]; then
        cp -n "$fuzz_dir/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    fi
    log="$logs/$t.log"
    echo "== $t: ${seconds}s (log: $log)" >&2
    start=$(date +%s)
    set +e
    # shellcheck disable=SC2086
    "${cargo_fuzz[@]}" run "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -print_final_stats=1 \
        ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    elapsed=$(( $(date +%s) - start ))
    # libFuzzer's own count of seconds fuzzed (the wall time above also holds any rebuild
    # `cargo fuzz run` did); the wall time when it stopped without saying (a crash).
    fuzzed=$(grep -o '^Done [0-9]* runs in [0-9]* second' "$log" | tail -n 1 | awk '{print $5}' || true)
    elapsed="${fuzzed:-$elapsed}"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
    execs="${execs:-?}"
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
    rate="${rate:-?}"
    size=$(find "$corpus" -type f | wc -l)
    if [ "$rc" -eq 0 ]; then
        status="no crash"
    else
        failed=1
        artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n 1 | sed 's/Test unit written to //' || true)
        status="CRASH (exit $rc) artifact: ${artifact:-see $log}"
        tail -n 40 "$log" >&2
    fi
    line="$t: ${elapsed}s, ${execs} executions (${rate}/s), corpus ${size} files, ${status}"
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
