#!/usr/bin/env bash
# Benchmark `surge report` on a large run: 16 shards × 2 hours of 1-second intervals × five
# tags (576,000 interval histograms). Target: ≤ 5 s on a 2-core machine (`surge compare`
# reads two runs: about twice that, plus its bootstrap).
#
#   scripts/bench-analyze.sh [SHARDS] [SECONDS]
#
# The data is generated once (deterministic) into target/bench-analyze/run-SHARDS-SECONDS
# with the surge-analyze example `gen_bench`; delete that directory to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."

shards="${1:-16}"
seconds="${2:-7200}"
data="target/bench-analyze/run-$shards-$seconds"

cargo build --release --quiet -p surge-cli --bin surge
cargo build --release --quiet -p surge-analyze --example gen_bench
if [ ! -f "$data/summary.json" ]; then
    rm -rf "$data"
    mkdir -p "$(dirname "$data")"
    echo "== generating $data"
    time target/release/examples/gen_bench "$data" "$shards" "$seconds"
fi
echo "== $(du -sh "$data" | cut -f1) of logs in $data"

TIMEFORMAT='%R'
for format in json text html; do
    out="target/bench-analyze/report.$format"
    # Exit 1 means a threshold failed, which is not a benchmark failure.
    elapsed="$( { time target/release/surge report "$data" --format "$format" --out "$out" >/dev/null 2>&1 || [ $? -eq 1 ]; } 2>&1 )"
    echo "surge report --format $format: ${elapsed} s"
done
# The run against itself: both sides read, then 1,000 bootstrap resamples of each.
elapsed="$( { time target/release/surge compare "$data" "$data" --format json --out target/bench-analyze/compare.json >/dev/null 2>&1; } 2>&1 )"
echo "surge compare (bootstrap 1000): ${elapsed} s"

