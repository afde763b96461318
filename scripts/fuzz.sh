#!/usr/bin/env bash
# Fuzzes every parser that reads outside input (fuzz/fuzz_targets/*) with libFuzzer, each for
# SECONDS seconds (default 10: the CI smoke run; 600 for the documented long run), one after
# another, after replaying the inputs that once failed (fuzz/regressions/TARGET/*).
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
#
# No nightly and no cargo-fuzz needed: the targets are built on stable with the coverage
# instrumentation cargo-fuzz uses (-Cpasses=sancov-module …, --cfg fuzzing, debug assertions),
# without AddressSanitizer (the crate forbids unsafe code; libFuzzer still catches panics,
# aborts, timeouts and memory blow-ups). `cargo fuzz run -s none TARGET` (with RUSTC_BOOTSTRAP=1
# on stable) runs the same targets.
#
# New inputs go to fuzz/corpus/TARGET (not committed); fuzz/seeds/TARGET holds the committed
# seeds. A failure leaves fuzz/artifacts/TARGET/crash-* (or timeout-*, oom-*) and fails the
# script; copy it into fuzz/regressions/TARGET/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-10}"
shift || true
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# --target keeps build scripts and proc macros uninstrumented, as cargo-fuzz does.
cargo build --release --locked --target "$host" --bins
bin_dir="target/$host/release"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=()
    for f in fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if compgen -G "regressions/$t/*" >/dev/null; then
        echo "== $t: replaying fuzz/regressions/$t"
        "$bin_dir/$t" regressions/"$t"/* 2>&1 | grep -E '^(Executed|Running)' | tail -1
    fi
    echo "== fuzz $t for ${secs}s"
    status=0
    "$bin_dir/$t" "corpus/$t" "seeds/$t" -max_total_time="$secs" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
        >"artifacts/$t/last-run.log" 2>&1 || status=$?
    grep -E '^(#[0-9]+.*DONE|Done |stat::(number_of_executed_units|peak_rss_mb))' \
        "artifacts/$t/last-run.log" || true
    if [ "$status" -ne 0 ]; then
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "artifacts/$t/last-run.log" >&2 || true
        echo "fuzz $t: failed (exit $status); see fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
