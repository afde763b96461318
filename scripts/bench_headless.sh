#!/usr/bin/env bash
# Whole-process cost of `carbontop record --headless`: CPU share of one core and peak RSS over a
# fixed duration, from the kernel's own accounting (GNU time / getrusage), plus the time to the
# first row of samples.csv. Usage: scripts/bench_headless.sh [SECONDS] [INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}; interval=${2:-1s}
cargo build --release --locked -q
bin=target/release/carbontop
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "machine: $(nproc) cores; record --headless --interval $interval for ${secs}s"
start=$(date +%s%N)
"$bin" record --headless --quiet --no-gpu --interval "$interval" --duration "${secs}s" --out "$out/r" \
  2>"$out/err" &
pid=$!
until [ -s "$out/r/samples.csv" ] && [ "$(wc -l < "$out/r/samples.csv")" -ge 2 ]; do sleep 0.002; done
first=$(( ($(date +%s%N) - start) / 1000000 ))
# utime+stime (clock ticks) and peak RSS from /proc just before the process ends.
sleep $((secs - 1))
read -r ut st < <(awk '{print $14, $15}' /proc/$pid/stat)
hwm=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
wait $pid || true
hz=$(getconf CLK_TCK)
awk -v ut="$ut" -v st="$st" -v hz="$hz" -v s="$secs" -v hwm="$hwm" -v first="$first" 'BEGIN {
  cpu = (ut + st) / hz
  printf "first sample row written after %d ms (incl. process start)\n", first
  printf "CPU time %.3f s over %d s = %.3f%% of one core\n", cpu, s, 100 * cpu / s
  printf "peak RSS %.1f MiB\n", hwm / 1024 }'
