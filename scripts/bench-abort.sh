#!/usr/bin/env bash
# bench-abort.sh — how fast a breached guard stops a run, beside Ctrl-C's stop in the same
# session as the peer.
#
#   scripts/bench-abort.sh [REPEATS]
#
# The mock (the shipped system model, order-tracking messages that need no LLM quota)
# answers well, then fails half of the chat
# messages from FAULT_FROM (default 20s) on. `surge run` carries an
# `errors.rate < 5%` guard (window 5s, after 5s) and 200 sessions at 100 messages/s for
# 120 s, once with one shard and once with --shards 2. For each run it reads run.json:
#   breach  the run time of the interval that broke the guard (breach.at_s)
#   stop    the run time of the last timeline row (the shards' last, closing interval)
#   react   stop − breach: what the issue asks to be at most one interval (1 s)
#   exit    wall clock from the breaching interval's end to run.json's ended_at
# The peer is Ctrl-C: SIGINT at a known run time, and the same two figures. Everything
# runs on 127.0.0.1 and is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
REPEATS=${1:-3}
FAULT_FROM=${FAULT_FROM:-20s}
PIDS=()
WORK=$(mktemp -d)
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

echo "building (release)…" >&2
cargo build --release -q -p surge-cli
SURGE=$PWD/target/release/surge

profile() { # $1: file, $2: thresholds
  cat >"$1" <<TOML
description = "bench-abort"
seed = 11
[system]
file = "$PWD/profiles/system/mangaassist.toml"
[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "10s"
connect_rate = "500/s"
[traffic.stores]
manga_jp = "100%"
[traffic.intents]
order_tracking = "100%"              # answered without the LLM: no quota in the way
[[traffic.stages]]
name = "hold"
duration = "120s"
sessions = 200
message_rate = "100/s"
[thresholds]
$2
TOML
}
profile "$WORK/guarded.toml" '"errors.rate" = { limit = "< 5%", abort = true, window = "5s", after = "5s" }'
profile "$WORK/plain.toml" ''

start_mock() { # $@: extra mock flags; sets ADDR and MOCK_PID
  local out="$WORK/mock.$RANDOM"
  "$SURGE" mock --profile "$WORK/plain.toml" --listen 127.0.0.1:0 "$@" >"$out" 2>/dev/null &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  for _ in $(seq 1 100); do grep -q '^listening on ' "$out" && break; sleep 0.1; done
  ADDR=$(sed -n 's/^listening on //p' "$out" | head -1)
}

figures() { # $1: run directory, $2: stop request at (run s) or "breach"
  python3 - "$1" "$2" <<'PY'
import csv, json, sys, datetime
run, when = sys.argv[1], sys.argv[2]
info = json.load(open(f"{run}/run.json"))
rows = list(csv.DictReader(open(f"{run}/timeline.csv")))
stop = float(rows[-1]["t_s"])
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
at = info["breach"]["at_s"] if when == "breach" else float(when)
wall = t(info["ended_at"]) - (t(info["started_at"]) + at)
print(f"{info['status']:<12} stop asked at {at:6.1f} s   last row {stop:6.1f} s   "
      f"react {stop - at:5.2f} s   exit {wall:5.2f} s after")
PY
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for shards in 1 2; do
  for i in $(seq 1 "$REPEATS"); do
    start_mock --fault-error-rate chat=0.5 --fault-from "$FAULT_FROM"
    out="$WORK/out-guard-$shards-$i"
    "$SURGE" run "$WORK/guarded.toml" --target "ws://$ADDR/chat" --shards "$shards" \
      --no-progress --out "$out" >/dev/null 2>&1 || true
    kill "$MOCK_PID" 2>/dev/null || true
    printf "guard   shards %s  " "$shards"; figures "$(ls -d "$out"/*/*)" breach

    start_mock
    out="$WORK/out-int-$shards-$i"
    "$SURGE" run "$WORK/plain.toml" --target "ws://$ADDR/chat" --shards "$shards" \
      --no-progress --out "$out" >/dev/null 2>&1 &
    run=$!
    # SIGINT half-way through an interval, 25.5 s after time zero (lead: 0.2 s, 1.5 s).
    lead=$([ "$shards" = 1 ] && echo 0.2 || echo 1.5)
    sleep "$(python3 -c "print(25.5 + $lead)")"
    kill -INT "$run"; wait "$run" || true
    kill "$MOCK_PID" 2>/dev/null || true
    printf "ctrl-c  shards %s  " "$shards"; figures "$(ls -d "$out"/*/*)" 25.5
  done
done
