#!/usr/bin/env bash
# A day's calibration: rehearse staging at everyday load, fit the model to it, then ask the
# fitted model about the spike and plan capacity on it. One Markdown page says it all.
#
#   1. surge run LEVEL --target TARGET   each everyday level (default the two profiles
#                                        everyday-low and everyday-high), scraping the
#                                        server's /metrics when SURGE_SCRAPE (or the mock) has one
#   2. surge calibrate RUNS --profile L  fits the model the first level's profile names
#   3. surge check SPIKE (fitted)        the quota pre-flight for the spike's peak
#   4. surge simulate SPIKE (fitted)     the spike's prediction on the fitted model
#   5. surge plan SPIKE (fitted)         the cheapest setting that holds the SLOs
#   6. calibration.md                    runs, fit, pre-flight, prediction and plan
#
# TARGET is ws(s)://HOST:PORT/PATH, or `mock` to start `surge mock` on loopback serving
# SURGE_MOCK_PROFILE's system model (default: the first level's profile, which makes the
# fit a consistency check; point it at a profile with other numbers to see a real fit).
# SPIKE defaults to profiles/one-piece-spike.toml; its [system] file is swapped for the
# fitted model and its own overrides (the release's preparation) stay on top.
#
# Environment: SURGE_BIN (a prebuilt surge; else target/release/surge, built if needed),
# SURGE_OUT (default results/calibration/<UTC timestamp>), SURGE_LEVELS (the everyday
# profiles, space-separated), SURGE_SCRAPE (Prometheus endpoints for `surge run --scrape`),
# SURGE_FIT (keys for `surge calibrate --fit`, comma-separated; default: all it can
# identify), SURGE_PLAN_ARGS (the `surge plan` flags; default: the SLOs ttft.p99<=2s,
# e2e.p99<=5s, errors.rate<=0.1% over orchestrator.min_tasks and Sonnet's provisioned
# units; empty string: no plan), SURGE_RUN_ARGS (extra `surge run` flags), and the
# profiles' token variable.
#
# Exits 0 when the page was written, 2 for bad usage, 3 when a step could not run.
#
# Usage: scripts/calibrate-then-predict.sh TARGET [SPIKE_PROFILE]
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"
case "${1:-}" in
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") echo "usage: scripts/calibrate-then-predict.sh TARGET [SPIKE_PROFILE]" >&2; exit 2 ;;
esac
target=$1
spike=$(realpath "${2:-$root/profiles/one-piece-spike.toml}")
read -r -a levels <<<"${SURGE_LEVELS:-$root/profiles/everyday-low.toml $root/profiles/everyday-high.toml}"
out=${SURGE_OUT:-$root/results/calibration/$(date -u +%Y-%m-%dT%H-%M-%SZ)}
plan_args=${SURGE_PLAN_ARGS-"--slo ttft.p99<=2s,e2e.p99<=5s,errors.rate<=0.1% --vary orchestrator.min_tasks=10..100:10 --vary bedrock.models.sonnet.provisioned_units=0..40:4 --replications 1"}

say() { printf '\n== %s\n' "$*" >&2; }
die() { echo "calibrate-then-predict: $2" >&2; exit "$1"; }

[ -f "$spike" ] || die 2 "no spike profile at $spike"
[ "${#levels[@]}" -ge 1 ] || die 2 "SURGE_LEVELS names no profile"
for l in "${levels[@]}"; do [ -f "$l" ] || die 2 "no everyday profile at $l"; done
find_surge "$root"
mkdir -p "$out/runs" || die 3 "cannot create $out"
out=$(realpath "$out")

# Fail early: every profile must be valid before any load is sent.
for p in "${levels[@]}" "$spike"; do
    "$surge" check "$p" >/dev/null || die 2 "$p is not a valid profile (see surge check $p)"
done

mock_pid=
stop_mock() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null && wait "$mock_pid" 2>/dev/null; }
trap stop_mock EXIT
trap 'stop_mock; exit 130' INT TERM
scrape=${SURGE_SCRAPE:-}
if [ "$target" = mock ]; then
    mock_profile=${SURGE_MOCK_PROFILE:-${levels[0]}}
    say "starting surge mock ($mock_profile)"
    coproc MOCK { exec "$surge" mock --profile "$mock_profile" --listen 127.0.0.1:0; }
    mock_pid=$MOCK_PID
    read -r -t 30 first <&"${MOCK[0]}" || die 3 "surge mock did not start"
    addr=${first#listening on }
    target="ws://$addr/chat"
    scrape=${scrape:-http://$addr/metrics}
fi

# 1. The everyday levels.
runs=()
for p in "${levels[@]}"; do
    name=$(basename "$p" .toml)
    say "surge run $name against $target"
    # shellcheck disable=SC2086 # SURGE_RUN_ARGS is a list of flags
    "$surge" run "$p" --target "$target" ${scrape:+--scrape "$scrape"} --no-progress \
        --out "$out/runs/$name" ${SURGE_RUN_ARGS:-} >/dev/null
    rc=$?
    [ "$rc" -le 1 ] || die "$rc" "surge run $name failed"
    dir=$(find "$out/runs/$name" -name run.json -printf '%h\n' | sort | tail -1)
    [ -n "$dir" ] || die 3 "surge run $name wrote no run directory"
    runs+=("$dir")
done
stop_mock
mock_pid=

# 2. The fit.
say "surge calibrate (${#runs[@]} runs)"
started=$(date +%s.%N)
"$surge" calibrate "${runs[@]}" --profile "${levels[0]}" --out "$out/fitted.toml" \
    ${SURGE_FIT:+--fit "$SURGE_FIT"} > "$out/fit.txt" || die 3 "surge calibrate failed"
fit_seconds=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
cat "$out/fit.txt"

# The spike on the fitted model: its [system] file is the fitted model, its overrides stay.
spike_fitted=$out/$(basename "$spike" .toml)-fitted.toml
awk -v fitted="$out/fitted.toml" '
    /^\[/ { in_system = ($0 ~ /^\[system\][[:space:]]*(#.*)?$/) }
    in_system && /^file[[:space:]]*=/ { print "file = \"" fitted "\""; next }
    { print }' "$spike" > "$spike_fitted"
grep -q "^file = \"$out/fitted.toml\"" "$spike_fitted" \
    || die 2 "$spike has no [system] file = … line to point at the fitted model"

# 3-5. Pre-flight, prediction, plan.
say "surge check (quota pre-flight on the fitted model)"
"$surge" check "$spike_fitted" > "$out/preflight.txt" || die 3 "surge check of the fitted spike failed"
say "surge simulate (the spike on the fitted model)"
"$surge" simulate "$spike_fitted" --out "$out/spike" >/dev/null
sim_rc=$?
[ "$sim_rc" -le 1 ] || die 3 "surge simulate of the fitted spike failed"
spike_dir=$(find "$out/spike" -name run.json -printf '%h\n' | sort | tail -1)
"$surge" report "$spike_dir" --format markdown --out "$out/spike.md" >/dev/null
plan_rc=
if [ -n "$plan_args" ]; then
    say "surge plan $plan_args"
    # shellcheck disable=SC2086 # plan_args is a list of flags
    "$surge" plan "$spike_fitted" $plan_args > "$out/plan.txt"
    plan_rc=$?
    [ "$plan_rc" -le 1 ] || die 3 "surge plan failed"
fi

# 6. The page.
page=$out/calibration.md
{
    echo "# Calibration of $(date -u +%Y-%m-%d): the spike on a fitted model"
    echo
    echo "Target: \`$target\`. Spike profile: \`$spike\`. Everything below is in \`$out\`."
    echo
    echo "## The runs"
    echo
    echo "| level | run directory | sent/s | answered | errors | e2e p50 / p99 ms | ttft p50 / p99 ms |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for dir in "${runs[@]}"; do
        python3 - "$dir" <<'PY' 2>/dev/null || echo "| $(basename "$(dirname "$dir")") | \`$dir\` | | | | | |"
import json, sys, os
d = sys.argv[1]
s = json.load(open(os.path.join(d, "summary.json")))
lat = s["latency_ms"]
def pair(tag):
    t = lat.get(tag)
    return f'{t["p50"]:.0f} / {t["p99"]:.0f}' if t else "—"
c = s["counts"]
print(f'| {os.path.basename(os.path.dirname(d))} | `{d}` | {s["rates"]["sent_per_s"]:.1f} | '
      f'{c["completed"]} of {c["sent"]} | {sum(s["errors"].values())} | {pair("e2e")} | {pair("ttft")} |')
PY
    done
    echo
    echo "## The fit ($fit_seconds s)"
    echo
    echo "The fitted system model is \`$out/fitted.toml\`; each fitted key carries a comment"
    echo "with its value, its start, the runs it came from and its fit error."
    echo
    echo '```'
    cat "$out/fit.txt"
    echo '```'
    echo
    echo "## Quota pre-flight for the spike's peak (fitted model)"
    echo
    echo '```'
    cat "$out/preflight.txt"
    echo '```'
    echo
    echo "## The spike on the fitted model"
    echo
    [ "$sim_rc" -eq 0 ] || echo "**The prediction fails a threshold of the spike profile.**"
    echo
    sed 's/^#/##/' "$out/spike.md"
    if [ -n "$plan_args" ]; then
        echo
        echo "## Capacity plan on the fitted model"
        echo
        echo "\`surge plan $plan_args\`$([ "$plan_rc" -eq 1 ] && echo ': **no candidate met the SLOs**')"
        echo
        echo '```'
        cat "$out/plan.txt"
        echo '```'
    fi
} > "$page"
echo
echo "calibration: fit took $fit_seconds s; page $page"
