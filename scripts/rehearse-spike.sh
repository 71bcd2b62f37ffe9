#!/usr/bin/env bash
# Spike rehearsal against a deployed chatbot (or `surge mock`): predict, pre-warm, load,
# then put the prediction next to the measurement.
#
#   0. surge check PROFILE, and surge prewarm --dry-run: refuses a target the profile's
#      target.allowed does not match (and a missing token) before anything else runs
#   1. surge simulate PROFILE            the prediction, printed (a predicted threshold
#                                        failure is reported and the rehearsal goes on)
#   2. surge prewarm PROFILE --target    the profile's [prewarm] HTTP calls (Q19 Layer 6,
#                                        pre_warm_for_release); a failed call stops here
#   3. surge run PROFILE --target        the ramp, the spike and the cool-down
#   4. surge report (report.html) and surge compare predicted measured
#      (prediction-vs-measured.md): the simulator's error per figure
#
# TARGET is ws(s)://HOST:PORT/PATH; PROFILE defaults to profiles/one-piece-spike.toml
# (2 h 40 min of load: for a short rehearsal on one machine see profiles/rehearsal-25k.toml
# and scripts/rehearse-25k.sh, which also starts the mock).
#
# Environment: SURGE_BIN (a prebuilt surge; else target/release/surge, built if needed),
# SURGE_OUT (default results/rehearsal/<UTC timestamp>), SURGE_RUN_ARGS (extra `surge run`
# flags, e.g. "--shards 2 --bind 127.0.0.1-127.0.0.4"), and the profile's token variable.
#
# Exits with `surge run`'s code: 0 the measured run held its thresholds, 1 a threshold
# failed, 2 bad usage (target refused, invalid profile), 3 could not run (pre-warm failed).
#
# Usage: scripts/rehearse-spike.sh TARGET [PROFILE]
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$root/scripts/lib/common.sh"
case "${1:-}" in
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") echo "usage: scripts/rehearse-spike.sh TARGET [PROFILE]" >&2; exit 2 ;;
esac
target=$1
profile=${2:-$root/profiles/one-piece-spike.toml}
out=${SURGE_OUT:-$root/results/rehearsal/$(date -u +%Y-%m-%dT%H-%M-%SZ)}

say() { printf '\n== %s\n' "$*"; }
die() { echo "rehearse-spike: $2" >&2; exit "$1"; }

find_surge "$root"

# 0. Fail early: an invalid profile, a target the profile does not allow, a missing token.
say "surge check $profile"
"$surge" check "$profile" || exit $?
say "target and pre-warm calls"
plan=$("$surge" prewarm "$profile" --target "$target" --dry-run) || exit $?
echo "$plan"
mkdir -p "$out" || die 3 "cannot create $out"

# 1. The prediction.
say "surge simulate (the prediction)"
"$surge" simulate "$profile" --out "$out/predicted"
sim_rc=$?
case $sim_rc in
    0) ;;
    1) echo "note: the prediction fails a threshold of the profile; rehearsing anyway" ;;
    *) die "$sim_rc" "surge simulate failed" ;;
esac
predicted=$(find "$out/predicted" -name run.json -printf '%h\n' | sort | tail -1)

# 2. Pre-warm the caches, as an hour before the release.
if grep -q 'has no \[prewarm\] table' <<<"$plan"; then
    say "no [prewarm] table in the profile: no pre-warm step"
else
    say "surge prewarm (Q19 Layer 6)"
    "$surge" prewarm "$profile" --target "$target" || die $? "the pre-warm step failed; no load sent"
fi

# 3. The ramp, the spike and the cool-down.
say "surge run against $target"
# shellcheck disable=SC2086 # SURGE_RUN_ARGS is a list of flags
"$surge" run "$profile" --target "$target" --out "$out/measured" ${SURGE_RUN_ARGS:-}
run_rc=$?
measured=$(find "$out/measured" -name run.json -printf '%h\n' 2>/dev/null | sort | tail -1)
[ -n "$measured" ] || die "$([ "$run_rc" -gt 1 ] && echo "$run_rc" || echo 3)" "no measured run directory"

# 4. Report and prediction against measurement.
say "report"
"$surge" report "$measured" --format html --out "$out/report.html" >/dev/null
if [ -n "$predicted" ]; then
    say "predicted (simulated) against measured"
    "$surge" compare "$predicted" "$measured" --format markdown \
        --out "$out/prediction-vs-measured.md"
    "$surge" compare "$predicted" "$measured"
fi
echo
echo "rehearsal: surge run exited $run_rc; measured $measured; predicted ${predicted:-none}"
echo "reports: $out/report.html, $out/prediction-vs-measured.md"
exit "$run_rc"
