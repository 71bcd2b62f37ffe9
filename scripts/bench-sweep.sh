#!/usr/bin/env bash
# bench-sweep.sh — the overhead of `surge sweep` between steps: how long no load is
# measured from one step's end to the next step's first interval.
#
#   scripts/bench-sweep.sh [REPEATS]      (SURGE_BIN=target/debug/surge to skip the build)
#
# Starts `surge mock` with profiles/local.toml's system on 127.0.0.1 and sweeps it with
# five steps (600..1800/min, 300/min apart, 5 s each, 200 sessions), REPEATS times (default
# 2). For each pair of consecutive steps it reads their run.json files:
#   drain  the step's ended_at − (started_at + hold): its in-flight answers coming back
#   gap    the next step's started_at (time zero, where its first interval begins) − the
#          step's ended_at: writing the run directory, the next step's profile, setting up
#          its sessions and the lead before time zero — what the issue asks to be ≤ 2 s
#   load   drain + gap: from the end of one step's hold to the next step's time zero, the
#          time without new load offered (the drain is the step's own answers, measured)
# and prints every pair, then the largest and the median. Exits 1 when a gap is over 2 s.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "== $*" >&2; }
die() { echo "bench-sweep: $2" >&2; exit "$1"; }
. scripts/lib/common.sh

REPEATS=${1:-2}
case "$REPEATS" in ''|*[!0-9]*) die 2 "REPEATS must be a whole number" ;; esac
HOLD=5
find_surge "$(pwd)"
WORK=$(mktemp -d)
MOCK=
cleanup() { [ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$surge" mock --profile profiles/local.toml --listen 127.0.0.1:0 >"$WORK/mock.out" 2>/dev/null &
MOCK=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$WORK/mock.out" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$WORK/mock.out" | head -1)
[ -n "$addr" ] || die 3 "the mock did not say where it listens"

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $surge"
for i in $(seq 1 "$REPEATS"); do
    "$surge" sweep profiles/local.toml --target "ws://$addr/chat" --rates 600..1800:300 \
        --hold "${HOLD}s" --sessions 200 --no-progress --out "$WORK/out-$i" >/dev/null 2>&1 || true
done

python3 - "$WORK" "$HOLD" <<'PY'
import datetime, glob, json, statistics, sys
work, hold = sys.argv[1], float(sys.argv[2])
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
gaps, idle = [], []
for sweep in sorted(glob.glob(f"{work}/out-*/*/sweep-*")):
    steps = json.load(open(f"{sweep}/sweep.json"))["steps"]
    runs = [json.load(open(f"{sweep}/{s['dir']}/run.json")) for s in steps]
    for s, a, b in zip(steps, runs, runs[1:]):
        drain = t(a["ended_at"]) - t(a["started_at"]) - hold
        gap = t(b["started_at"]) - t(a["ended_at"])
        gaps.append(gap)
        idle.append(drain + gap)
        print(f"step {s['index']:02} → {s['index'] + 1:02}  drain {drain:5.2f} s   gap {gap:5.2f} s"
              f"   load {drain + gap:5.2f} s")
if not gaps:
    sys.exit("bench-sweep: no two consecutive steps ran (is the mock up?)")
print(f"sweep overhead between steps: largest {max(gaps):.2f} s, median "
      f"{statistics.median(gaps):.2f} s over {len(gaps)} gaps (limit 2 s); from one hold's end "
      f"to the next time zero: largest {max(idle):.2f} s, median {statistics.median(idle):.2f} s")
sys.exit(1 if max(gaps) > 2.0 else 0)
PY
