#!/usr/bin/env bash
# Capacity-planning benchmark: `surge plan` on the two-hour 50x spike with three knobs.
#
# Goal (issue #18, was ≤ 2 minutes in issue #4): finishes in ≤ 30 s on a 2-core machine.
# Prints the plan and the wall time. Extra arguments go to `surge plan` (e.g. --replications 1).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p surge-cli
start=$(date +%s.%N)
target/release/surge plan profiles/one-piece-spike.toml \
    --slo 'ttft.p99<=2s,e2e.p99<=5s,errors.rate<=0.1%' \
    --vary bedrock.models.sonnet.provisioned_units=0..40:2 \
    --vary bedrock.models.haiku.provisioned_units=0..10 \
    --vary cache.prewarm='on|off' \
    --replications 2 "$@" || status=$?
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "wall: %.1f s (goal ≤ 30 s)\n", e - s }'
exit "${status:-0}"
