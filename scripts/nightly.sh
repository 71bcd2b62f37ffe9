#!/usr/bin/env bash
# The nightly performance gate: run a profile against staging, judge its thresholds, compare
# with the checked-in baseline, and leave reports a CI job can keep.
#
#   1. surge run $SURGE_PROFILE --target $SURGE_TARGET   (thresholds; final metrics pushed to
#      $SURGE_PUSHGATEWAY when set)
#   2. surge report: report.md, report.html, junit-thresholds.xml
#   3. surge compare $SURGE_BASELINE RUN --max-regression $SURGE_MAX_REGRESSION:
#      compare.md, junit-regression.xml
#   4. summary.md (report + comparison), appended to $GITHUB_STEP_SUMMARY when set
#
# Environment:
#   SURGE_TARGET          ws(s)://HOST:PORT/PATH to load (required; the profile's
#                         target.allowed must match it, loopback always passes)
#   SURGE_PROFILE         default profiles/nightly-staging.toml (its token_env names the
#                         variable holding the bearer token, e.g. SURGE_STAGING_TOKEN)
#   SURGE_BASELINE        run directory to compare with, default results/baselines/nightly
#   SURGE_MAX_REGRESSION  default 'e2e.p99=+15%,ttft.p99=+15%,ttft.p50=+20%,errors.rate=+0.05pp'
#   SURGE_OUT             output directory, default results/nightly/<UTC timestamp>
#   SURGE_PUSHGATEWAY     Prometheus Pushgateway URL for the final metrics (optional)
#   SURGE_RUN_ARGS        extra `surge run` flags, e.g. "--shards 2" (optional)
#   SURGE_BIN             a prebuilt surge; else target/release/surge, built if needed
#
# Exit codes (surge's contract): 0 thresholds and regression limits hold; 1 a threshold or
# a regression limit failed; 2 bad usage (no target, invalid profile, unknown figure in a
# limit); 3 the run could not be carried out.
#
# Usage: SURGE_TARGET=wss://chat.staging.example.com/ws scripts/nightly.sh
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

target=${SURGE_TARGET:-}
profile=${SURGE_PROFILE:-$root/profiles/nightly-staging.toml}
baseline=${SURGE_BASELINE:-$root/results/baselines/nightly}
limits=${SURGE_MAX_REGRESSION:-'e2e.p99=+15%,ttft.p99=+15%,ttft.p50=+20%,errors.rate=+0.05pp'}
out=${SURGE_OUT:-$root/results/nightly/$(date -u +%Y-%m-%dT%H-%M-%SZ)}

say() { echo "== $*" >&2; }
die() { echo "nightly: $2" >&2; exit "$1"; }

[ -n "$target" ] || die 2 "set SURGE_TARGET to the WebSocket URL to load (ws://… or wss://…)"
[ -f "$profile" ] || die 2 "no profile at $profile"
[ -f "$baseline/run.json" ] || die 2 "no baseline run directory at $baseline (run.json missing)"

find_surge "$root"

mkdir -p "$out" || die 3 "cannot create $out"
summary=$out/summary.md

# Appends the summary to the CI step summary, when there is one.
publish() {
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
        cat "$summary" >>"$GITHUB_STEP_SUMMARY"
    fi
}

# 1. The run.
say "surge run $(basename "$profile") against $target"
push=()
[ -n "${SURGE_PUSHGATEWAY:-}" ] && push=(--pushgateway "$SURGE_PUSHGATEWAY")
# shellcheck disable=SC2086 # SURGE_RUN_ARGS is a list of flags
"$surge" run "$profile" --target "$target" --out "$out/runs" --no-progress \
    "${push[@]}" ${SURGE_RUN_ARGS:-}
run_rc=$?
run_dir=$(find "$out/runs" -name run.json -printf '%h\n' 2>/dev/null | sort | tail -1)
if [ "$run_rc" -gt 1 ] || [ -z "$run_dir" ]; then
    {
        echo "## surge nightly: could not run"
        echo
        echo "\`surge run\` exited $run_rc against \`$target\`; see the job log."
    } >"$summary"
    publish
    case $run_rc in
        2) exit 2 ;;
        *) exit 3 ;;
    esac
fi

# 2. The report: Markdown for people, HTML to keep, JUnit for the CI's test view. The
#    thresholds are judged again on exactly the data shown (exit 1 when one fails).
say "surge report $run_dir"
"$surge" report "$run_dir" --format markdown --out "$out/report.md"
report_rc=$?
"$surge" report "$run_dir" --format html --out "$out/report.html"
"$surge" report "$run_dir" --format junit --out "$out/junit-thresholds.xml"
[ "$report_rc" -le 1 ] || die 3 "surge report failed ($report_rc)"

# 3. Regression against the baseline.
say "surge compare $baseline $run_dir --max-regression $limits"
"$surge" compare "$baseline" "$run_dir" --max-regression "$limits" --format markdown \
    --out "$out/compare.md"
compare_rc=$?
"$surge" compare "$baseline" "$run_dir" --max-regression "$limits" --format junit \
    --out "$out/junit-regression.xml" 2>/dev/null
[ "$compare_rc" -ne 2 ] || die 2 "a --max-regression limit is invalid: $limits"
[ "$compare_rc" -le 1 ] || die 3 "surge compare failed ($compare_rc)"

thresholds=passed
[ "$run_rc" -eq 1 ] || [ "$report_rc" -eq 1 ] && thresholds=failed
regression=passed
[ "$compare_rc" -eq 1 ] && regression=failed
verdict=PASS
[ "$thresholds" = passed ] && [ "$regression" = passed ] || verdict=FAIL

# 4. One Markdown page: verdict, report, comparison.
{
    echo "## surge nightly: $verdict"
    echo
    echo "- profile: \`$(basename "$profile")\`, target: \`$(echo "$target" | sed -E 's#://[^/@]*@#://#; s#\?.*##')\`"
    echo "- thresholds: **$thresholds**; regression against \`${baseline#"$root"/}\` ($limits): **$regression**"
    echo "- run directory: \`$run_dir\`"
    echo
    cat "$out/report.md"
    echo
    cat "$out/compare.md"
} >"$summary"
publish

echo "nightly: $verdict (thresholds $thresholds, regression $regression); reports in $out"
[ "$verdict" = PASS ] && exit 0
exit 1
