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
# Everything runs on 127.0.0.1 and is stopped on exit.
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

echo "building (release)…" >&2
cargo build --release -q -p surge-cli
cargo build --release -q -p surge-mock --example loadclient
SURGE=target/release/surge
CLIENT=target/release/examples/loadclient

# The mock: one worker, port chosen by the kernel, read from its first line.
OUT=$(mktemp)
"$SURGE" mock --profile crates/mock/bench/profile.toml --listen 127.0.0.1:0 >"$OUT" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q '^listening on ' "$OUT" && break; sleep 0.1; done
MOCK="http://$(sed -n 's/^listening on //p' "$OUT" | head -1)"
echo "surge mock at $MOCK" >&2

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
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$DYNALITE_PORT/" && break; sleep 0.1; done
    DYNALITE="http://127.0.0.1:$DYNALITE_PORT"
    echo "dynalite $(node -p "require('./$DYNALITE_DIR/node_modules/dynalite/package.json').version") at $DYNALITE" >&2
  fi
fi

# One JSON line per run; the figure of interest is requests/s (events/s for streams).
run() { "$CLIENT" "$1" "$2" "$3" "$CONC"; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['$2'])" "$1"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.1f}x' if b>0 else 'n/a')" "$1" "$2"; }

# peer NAME URL MODE METRIC MOCK_FIGURE: the peer's figure and the mock's ratio to it, or
# "- -" without the peer; its errors go to stderr.
peer() {
  local name=$1 url=$2 mode=$3 metric=$4 mv=$5
  if [ -z "$url" ] || { [ "$name" = dynalite ] && [ "$mode" = bedrock-stream ]; }; then
    echo "- -"
    return
  fi
  local t; t=$(run "$url" "$mode" "$REQ_PEER")
  local err; err=$(field "$t" errors)
  if [ "$err" != 0 ]; then
    echo "$name $mode: $err errors: $(field "$t" first_error | head -1 | cut -c1-80)" >&2
  fi
  echo "$(field "$t" "$metric") $(ratio "$mv" "$(field "$t" "$metric")")"
}

printf '%-16s %12s %12s %8s %12s %8s   %s\n' mode mock moto ratio dynalite ratio unit
for mode in dynamodb-put dynamodb-get bedrock-stream; do
  metric=requests_per_second unit=req/s
  [ "$mode" = bedrock-stream ] && metric=events_per_second unit=events/s
  m=$(run "$MOCK" "$mode" "$REQ_MOCK")
  mv=$(field "$m" $metric)
  [ "$(field "$m" errors)" != 0 ] && echo "mock $mode: $(field "$m" errors) errors" >&2
  read -r tv tr <<<"$(peer moto "$MOTO" "$mode" "$metric" "$mv")"
  read -r dv dr <<<"$(peer dynalite "$DYNALITE" "$mode" "$metric" "$mv")"
  printf '%-16s %12s %12s %8s %12s %8s   %s\n' "$mode" "$mv" "$tv" "$tr" "$dv" "$dr" "$unit"
done
