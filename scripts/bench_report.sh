#!/usr/bin/env bash
# `report` on a week at 1 s (604,800 rows; DESIGN.md §8: under 5 s for CSV + PNG, bounded memory).
# The recording is generated here (scripts/gen_week.py), never committed.
# Usage: scripts/bench_report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 scripts/gen_week.py "$tmp/week.csv"
echo "machine: $(nproc) cores; report on $(($(wc -l < "$tmp/week.csv") - 1)) rows ($(du -h "$tmp/week.csv" | cut -f1))"
/usr/bin/env time -f "report --png --emissions: %e s wall, %U s user, peak RSS %M KiB" \
  target/release/carbontop report "$tmp/week.csv" --png "$tmp/week.png" --emissions "$tmp/em.csv" >/dev/null
ls -la "$tmp/week.png" | awk '{print "PNG " $5 " bytes"}'
