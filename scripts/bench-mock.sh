#!/usr/bin/env bash
# bench-mock.sh — surge mock's DynamoDB and Bedrock throughput on loopback, side by side
# with two DynamoDB servers surge did not write: moto's (Python) and dynalite (Node.js,
# built for speed on LevelDB's in-memory store), all driven by the same load client
# (crates/mock/examples/loadclient.rs).
#
#   scripts/bench-mock.sh [REQUESTS_MOCK] [REQUESTS_PEER] [CONCURRENCY]
#
# Defaults: 50,000 requests against the mock, 5,000 against each peer (they are slower;
# the figure is a rate either way), concurrency 64. The mock serves crates/mock/bench/
# profile.toml: instant models and no capacity limits, so this measures request handling,
# not the system model. moto is installed into a venv (MOTO_VENV, default
# target/moto-venv) with `pip install 'moto[server]'`, dynalite into DYNALITE_DIR (default
# target/dynalite) with `npm install dynalite`, each on first use; a peer that cannot be
# installed is skipped with a message. SKIP_MOTO=1 / SKIP_DYNALITE=1 leave one out.
# SURGE_BIN=PATH serves that surge binary instead of building this tree's (an A/B run).
# Everything runs on 127.0.0.1 and is stopped on exit.
#
# Beside them runs the floor (crates/mock/examples/floor.rs): a server that parses each
# request's head and answers a canned GetItem item, on the mock's runtime, doing nothing
# else. Its per-CPU-second figure is what the kernel and the runtime leave to any server
# here, so the "of floor" column says how much of the machine's limit the mock reaches, and
# "10x dynalite" can be read against what is possible at all.
#
# Two figures per mode and server: requests (events) per second of wall time with this
# client, and per CPU-second of the server (its utime + stime over the run, every thread,
# from /proc/PID/stat). The client shares the machine's cores with the server, so the
# second is the fair cost figure when the client, not the server, bounds the first. A third
# line gives the client's own CPU per request: on C cores no server, however cheap, gets
# more than C / that out of this client.
set -euo pipefail

cd "$(dirname "$0")/.."
REQ_MOCK=${1:-50000}
REQ_PEER=${2:-5000}
CONC=${3:-64}
MOTO_VENV=${MOTO_VENV:-target/moto-venv}
MOTO_PORT=${MOTO_PORT:-5055}
DYNALITE_DIR=${DYNALITE_DIR:-target/dynalite}
DYNALITE_PORT=${DYNALITE_PORT:-5056}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

TARGET=${CARGO_TARGET_DIR:-target}
echo "building (release)…" >&2
if [ -z "${SURGE_BIN:-}" ]; then cargo build --release -q -p surge-cli; fi
cargo build --release -q -p surge-mock --example loadclient --example floor
SURGE=${SURGE_BIN:-$TARGET/release/surge}
CLIENT=$TARGET/release/examples/loadclient

# The mock: one worker, port chosen by the kernel, read from its first line.
OUT=$(mktemp)
"$SURGE" mock --profile crates/mock/bench/profile.toml --listen 127.0.0.1:0 >"$OUT" 2>/dev/null &
PIDS+=($!)
MOCK_PID=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$OUT" && break; sleep 0.1; done
MOCK="http://$(sed -n 's/^listening on //p' "$OUT" | head -1)"
echo "surge mock at $MOCK" >&2

# The floor: a server with no work of its own, port chosen the same way.
FLOOR_OUT=$(mktemp)
"$TARGET/release/examples/floor" >"$FLOOR_OUT" 2>/dev/null &
PIDS+=($!)
FLOOR_PID=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$FLOOR_OUT" && break; sleep 0.1; done
FLOOR="http://$(sed -n 's/^listening on //p' "$FLOOR_OUT" | head -1)"
echo "floor at $FLOOR" >&2

MOTO=""
if [ "${SKIP_MOTO:-0}" != 1 ]; then
  if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    echo "installing moto[server] into $MOTO_VENV…" >&2
    { python3 -m venv "$MOTO_VENV" && "$MOTO_VENV/bin/pip" install -q 'moto[server]'; } ||
      echo "moto could not be installed: its column is skipped" >&2
  fi
  if [ -x "$MOTO_VENV/bin/moto_server" ]; then
    "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >/dev/null 2>&1 &
    PIDS+=($!)
    MOTO_PID=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$MOTO_PORT/" && break; sleep 0.2; done
    MOTO="http://127.0.0.1:$MOTO_PORT"
    echo "moto at $MOTO" >&2
  fi
fi

DYNALITE=""
if [ "${SKIP_DYNALITE:-0}" != 1 ]; then
  if [ ! -x "$DYNALITE_DIR/node_modules/.bin/dynalite" ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "installing dynalite into $DYNALITE_DIR…" >&2
      mkdir -p "$DYNALITE_DIR"
      npm install --prefix "$DYNALITE_DIR" --no-audit --no-fund --silent dynalite >/dev/null 2>&1 ||
        echo "dynalite could not be installed (npm install dynalite failed): its column is skipped" >&2
    else
      echo "no npm: the dynalite column is skipped (install Node.js and npm to get it)" >&2
    fi
  fi
  if [ -x "$DYNALITE_DIR/node_modules/.bin/dynalite" ]; then
    # In memory (no --path); tables ACTIVE at once, as the mock's and moto's are.
    "$DYNALITE_DIR/node_modules/.bin/dynalite" --port "$DYNALITE_PORT" --host 127.0.0.1 \
      --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >/dev/null 2>&1 &
    PIDS+=($!)
    DYNALITE_PID=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$DYNALITE_PORT/" && break; sleep 0.1; done
    DYNALITE="http://127.0.0.1:$DYNALITE_PORT"
    echo "dynalite $(node -p "require(require('path').resolve('$DYNALITE_DIR/node_modules/dynalite/package.json')).version") at $DYNALITE" >&2
  fi
fi

# One JSON line per run; the figure of interest is requests/s (events/s for streams).
run() { "$CLIENT" "$1" "$2" "$3" "$CONC"; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['$2'])" "$1"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.1f}x' if b>0 else 'n/a')" "$1" "$2"; }
# utime + stime of a process, all its threads, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# measure PID URL MODE REQUESTS METRIC: "rate per_server_cpu_second client_cpu_us_per_request";
# errors go to stderr.
measure() {
  local pid=$1 url=$2 mode=$3 n=$4 metric=$5
  local t0; t0=$(ticks "$pid")
  local t; t=$(run "$url" "$mode" "$n")
  local t1; t1=$(ticks "$pid")
  local err; err=$(field "$t" errors)
  if [ "$err" != 0 ]; then
    local first; first=$(field "$t" first_error)
    first=${first//$'\n'/ }
    echo "$url $mode: $err errors: ${first:0:80}" >&2
  fi
  local count=ok
  [ "$metric" = events_per_second ] && count=events
  python3 - "$(field "$t" "$metric")" "$(field "$t" "$count")" "$t0" "$t1" "$HZ" \
    "$(field "$t" client_cpu_seconds)" "$(field "$t" ok)" <<'PY'
import sys
rate, n, t0, t1, hz, client, ok = sys.argv[1:]
server = (int(t1) - int(t0)) / int(hz)
per_cpu = round(float(n) / server) if server > 0 else "n/a"
client_us = round(float(client) / int(ok) * 1e6, 1) if int(ok) > 0 else "n/a"
print(round(float(rate)), per_cpu, client_us)
PY
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
printf '%-16s %12s %12s %8s %12s %8s %12s %8s   %s\n' mode mock moto ratio dynalite ratio floor "of floor" unit
for mode in dynamodb-put dynamodb-get bedrock-stream; do
  metric=requests_per_second unit=req
  [ "$mode" = bedrock-stream ] && metric=events_per_second unit=events
  read -r mv mc mu <<<"$(measure "$MOCK_PID" "$MOCK" "$mode" "$REQ_MOCK" $metric)"
  tv="-" tc="-" tu="-" dv="-" dc="-" du="-" fv="-" fc="-" fu="-"
  if [ -n "$MOTO" ]; then
    read -r tv tc tu <<<"$(measure "$MOTO_PID" "$MOTO" "$mode" "$REQ_PEER" $metric)"
  fi
  if [ -n "$DYNALITE" ] && [ "$mode" != bedrock-stream ]; then
    read -r dv dc du <<<"$(measure "$DYNALITE_PID" "$DYNALITE" "$mode" "$REQ_PEER" $metric)"
  fi
  if [ "$mode" = dynamodb-get ]; then
    read -r fv fc fu <<<"$(measure "$FLOOR_PID" "$FLOOR" "$mode" "$REQ_MOCK" $metric)"
  fi
  r() { if [ "$2" = - ]; then echo -; else ratio "$1" "$2"; fi; }
  pct() { if [ "$2" = - ]; then echo -; else python3 -c "import sys; print(f'{100*float(sys.argv[1])/float(sys.argv[2]):.0f}%')" "$1" "$2"; fi; }
  printf '%-16s %12s %12s %8s %12s %8s %12s %8s   %s\n' "$mode" "$mv" "$tv" "$(r "$mv" "$tv")" "$dv" "$(r "$mv" "$dv")" "$fv" "$(pct "$mv" "$fv")" "$unit/s"
  printf '%-16s %12s %12s %8s %12s %8s %12s %8s   %s\n' "" "$mc" "$tc" "$(r "$mc" "$tc")" "$dc" "$(r "$mc" "$dc")" "$fc" "$(pct "$mc" "$fc")" "$unit per server CPU-s"
  printf '%-16s %12s %12s %8s %12s %8s %12s %8s   %s\n' "" "$mu" "$tu" "" "$du" "" "$fu" "" "client CPU µs per request"
done
