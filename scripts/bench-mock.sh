#!/usr/bin/env bash
# bench-mock.sh — surge mock's DynamoDB and Bedrock throughput on loopback, side by side
# with moto's server, driven by the same load client (crates/mock/examples/loadclient.rs).
#
#   scripts/bench-mock.sh [REQUESTS_MOCK] [REQUESTS_MOTO] [CONCURRENCY]
#
# Defaults: 50,000 requests against the mock, 5,000 against moto (it is much slower; the
# figure is a rate either way), concurrency 64. The mock serves crates/mock/bench/
# profile.toml: instant models and no capacity limits, so this measures request handling,
# not the system model. moto is installed into a venv (MOTO_VENV, default
# target/moto-venv) with `pip install 'moto[server]'` on first use. Set SKIP_MOTO=1 to
# bench the mock alone. Everything runs on 127.0.0.1 and is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."
REQ_MOCK=${1:-50000}
REQ_MOTO=${2:-5000}
CONC=${3:-64}
MOTO_VENV=${MOTO_VENV:-target/moto-venv}
MOTO_PORT=${MOTO_PORT:-5055}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "building (release)…" >&2
cargo build --release -q -p surge-cli -p surge-mock --example loadclient
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
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q 'moto[server]'
  fi
  "$MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$MOTO_PORT/" && break; sleep 0.2; done
  MOTO="http://127.0.0.1:$MOTO_PORT"
  echo "moto at $MOTO" >&2
fi

# One JSON line per run; the figure of interest is requests/s (events/s for streams).
run() { "$CLIENT" "$1" "$2" "$3" "$CONC"; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d['$2'])" "$1"; }

printf '%-16s %14s %14s %8s   %s\n' mode "mock" "moto" "ratio" "notes"
for mode in dynamodb-put dynamodb-get bedrock-stream; do
  m=$(run "$MOCK" "$mode" "$REQ_MOCK")
  metric=requests_per_second
  [ "$mode" = bedrock-stream ] && metric=events_per_second
  mv=$(field "$m" $metric)
  note="mock errors $(field "$m" errors)"
  tv="-"; ratio="-"
  if [ -n "$MOTO" ]; then
    t=$(run "$MOTO" "$mode" "$REQ_MOTO")
    tv=$(field "$t" $metric)
    terr=$(field "$t" errors)
    if [ "$terr" != 0 ]; then
      note="$note; moto errors $terr: $(field "$t" first_error | head -1 | cut -c1-60)"
    fi
    ratio=$(python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.0f}x' if b>0 else 'n/a')" "$mv" "$tv")
  fi
  unit="req/s"; [ "$mode" = bedrock-stream ] && unit="events/s"
  printf '%-16s %14s %14s %8s   %s (%s)\n' "$mode" "$mv" "$tv" "$ratio" "$note" "$unit"
done
