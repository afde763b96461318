#!/usr/bin/env bash
# Fuzzes every parser that reads outside input (fuzz/fuzz_targets/*), each for SECONDS seconds
# (default 10: the CI smoke run; 600 for the documented long run), one after another.
#   scripts/fuzz.sh [SECONDS] [TARGET ...]
# cargo fuzz wants nightly; this machine has stable only, so RUSTC_BOOTSTRAP=1 lets stable rustc
# take the -Z flags, and `-s none` leaves out AddressSanitizer (the crate forbids unsafe code;
# libFuzzer still catches panics, aborts, timeouts and memory blow-ups). New inputs go to
# fuzz/corpus/TARGET (not committed); fuzz/seeds/TARGET holds the committed seeds; a crash
# leaves fuzz/artifacts/TARGET/crash-* and fails the script.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-10}"
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build -s none
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== fuzz $t for ${secs}s"
    cargo fuzz run -s none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+.*DONE|Done|stat::number_of_executed_units|stat::peak_rss_mb|==|INFO: seed corpus)|panicked|ERROR|SUMMARY|crash-' || true
    if compgen -G "artifacts/$t/crash-*" >/dev/null || compgen -G "artifacts/$t/timeout-*" >/dev/null || compgen -G "artifacts/$t/oom-*" >/dev/null; then
        echo "fuzz $t: failure inputs in fuzz/artifacts/$t" >&2
        exit 1
    fi
done
