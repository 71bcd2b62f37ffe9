#!/usr/bin/env bash
# Two builds of surge side by side: did a change make the simulator or the mock slower?
#
# This machine's speed drifts by tens of percent over minutes, so the two builds take turns
# within each round, and each figure is the median over ROUNDS rounds. Measured:
#   - the simulator on the M/M/10 queue of bench-sim-vs-simpy.sh (1,000,000 customers),
#     customers per second of wall time;
#   - the simulator on the two-hour spike (profiles/one-piece-spike.toml), seconds of wall;
#   - the mock under crates/mock/examples/loadclient (as bench-mock.sh drives it):
#     DynamoDB PutItem and GetItem requests/s and Bedrock ConverseStream events/s.
# The last column is NEW / OLD (above 1: NEW is faster; for the spike, OLD / NEW).
#
# Usage: scripts/bench-builds.sh OLD_SURGE NEW_SURGE [ROUNDS] [MOCK_REQUESTS]
#        (default 3 rounds, 30,000 mock requests per mode; NEW_SURGE may be "-" for this
#        checkout's release build)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "== $*" >&2; }
die() { echo "bench-builds: $2" >&2; exit "$1"; }
. scripts/lib/common.sh

[ $# -ge 2 ] || die 2 "usage: scripts/bench-builds.sh OLD_SURGE NEW_SURGE [ROUNDS] [MOCK_REQUESTS]"
old=$1
new=$2
rounds=${3:-3}
requests=${4:-30000}
case "$rounds$requests" in ''|*[!0-9]*) die 2 "ROUNDS and MOCK_REQUESTS must be whole numbers" ;; esac
if [ "$new" = - ]; then
    find_surge "$(pwd)"
    new=$surge
fi
for b in "$old" "$new"; do [ -x "$b" ] || die 2 "no executable at $b"; done
say "building the load client (release)"
cargo build --release --locked --quiet -p surge-mock --example loadclient || die 3 "cannot build loadclient"
client=${CARGO_TARGET_DIR:-target}/release/examples/loadclient

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
write_mmc_profile "$work/mmc.toml" 1000000

# Figures go to $work/<build>.<figure>, one line per round.
record() {
    echo "$3" >> "$work/$1.$2"
    echo "   $1 $2 $3" >&2
}
median() { sort -g "$work/$1.$2" | sed -n "$(( (rounds + 1) / 2 ))p"; }

sim_round() {
    local tag=$1 bin=$2 line
    line=$("$bin" simulate "$work/mmc.toml" --no-write | grep '^simulated .* messages in')
    record "$tag" mmc "$(sed -E 's/.*, ([0-9.]+) messages\/s\).*/\1/' <<<"$line")"
    line=$("$bin" simulate profiles/one-piece-spike.toml --no-write | grep '^simulated .* wall')
    record "$tag" spike "$(sed -E 's/.* in ([0-9.]+) s wall.*/\1/' <<<"$line")"
}

mock_round() {
    local tag=$1 bin=$2 out=$work/mock.out addr mode metric line
    : > "$out"
    "$bin" mock --profile crates/mock/bench/profile.toml --listen 127.0.0.1:0 >"$out" 2>/dev/null &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 100); do grep -q '^listening on ' "$out" && break; sleep 0.1; done
    addr=$(sed -n 's/^listening on //p' "$out" | head -1)
    [ -n "$addr" ] || die 3 "$bin mock did not start"
    for mode in dynamodb-put dynamodb-get bedrock-stream; do
        metric=requests_per_second
        [ "$mode" = bedrock-stream ] && metric=events_per_second
        line=$("$client" "http://$addr" "$mode" "$requests" 64)
        record "$tag" "$mode" "$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['$metric'])" "$line")"
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

for r in $(seq 1 "$rounds"); do
    say "round $r of $rounds"
    # Alternate which build goes first, so neither always runs on a cooler machine.
    if [ $(( r % 2 )) -eq 1 ]; then order="old new"; else order="new old"; fi
    for tag in $order; do
        bin=$old; [ "$tag" = new ] && bin=$new
        sim_round "$tag" "$bin"
        mock_round "$tag" "$bin"
    done
done

printf '%-28s %14s %14s %8s\n' figure old new ratio
for fig in mmc spike dynamodb-put dynamodb-get bedrock-stream; do
    o=$(median old "$fig")
    n=$(median new "$fig")
    case $fig in
        mmc) name="M/M/10 customers/s" ;;
        spike) name="spike wall s (ratio old/new)" ;;
        *) name="mock $fig" ;;
    esac
    if [ "$fig" = spike ]; then
        ratio=$(awk -v a="$o" -v b="$n" 'BEGIN { printf "%.3f", a / b }')
    else
        ratio=$(awk -v a="$n" -v b="$o" 'BEGIN { printf "%.3f", a / b }')
    fi
    printf '%-28s %14s %14s %8s\n' "$name" "$o" "$n" "$ratio"
done
echo "(medians of $rounds rounds; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
