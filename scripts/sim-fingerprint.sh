#!/usr/bin/env bash
# The simulator's outputs on every shipped profile, with wall-clock fields taken out, so two
# builds can be compared byte for byte (a refactoring of the model must not change them).
#
# Writes OUT/<profile>/{report.txt,run.json,summary.json,timeline.csv,shard-000.hlog}: the
# printed report without its wall-time line, run.json without its start and end instants,
# and the hlog without its StartTime/BaseTime header lines. Then compare two builds with
# `diff -r OUT_A OUT_B`.
#
# Usage: scripts/sim-fingerprint.sh OUT [PROFILE...]   (SURGE_BIN picks the binary;
#        default: every profile under profiles/ but the 2-hour spike, which takes seconds
#        more; name it to include it)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "== $*" >&2; }
die() { echo "sim-fingerprint: $2" >&2; exit "$1"; }
. scripts/lib/common.sh

[ $# -ge 1 ] || die 2 "usage: scripts/sim-fingerprint.sh OUT [PROFILE...]"
out=$1
shift
if [ $# -eq 0 ]; then
    set -- $(ls profiles/*.toml | grep -v one-piece-spike)
fi
find_surge "$(pwd)"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for profile in "$@"; do
    name=$(basename "$profile" .toml)
    say "$name"
    dest="$out/$name"
    rm -rf "$dest" "$work/runs"
    mkdir -p "$dest"
    code=0
    "$surge" simulate "$profile" --out "$work/runs" > "$work/report.txt" || code=$?
    # Exit 1 (thresholds failed) is an outcome like any other; anything else is not.
    [ "$code" -le 1 ] || die 3 "surge simulate $profile exited $code"
    echo "exit $code" > "$dest/exit"
    grep -v '^simulated .* wall\|^run directory:' "$work/report.txt" > "$dest/report.txt"
    run=$(find "$work/runs" -name run.json -printf '%h\n' | head -n 1)
    [ -n "$run" ] || die 3 "no run directory for $profile"
    python3 - "$run/run.json" "$dest/run.json" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
for key in ("started_at", "ended_at", "surge_version"):
    run.pop(key, None)
json.dump(run, open(sys.argv[2], "w"), indent=1, sort_keys=True)
PY
    cp "$run/summary.json" "$run/timeline.csv" "$dest/" 2>/dev/null || true
    for hlog in "$run"/*.hlog; do
        grep -v '^#\[StartTime\|^#\[BaseTime' "$hlog" > "$dest/$(basename "$hlog")"
    done
done
say "fingerprints in $out"
