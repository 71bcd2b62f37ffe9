#!/usr/bin/env bash
# The seed's peak on one machine: 25,000 WebSocket sessions at 250,000 messages/minute
# against surge's local mock (profiles/rehearsal-25k.toml: ramp 55 s at 500 connections/s,
# 100 s at peak, 20 s down).
#
# A process here may hold at most 20,000 open files, so both sides are split: the mock
# serves from 2 processes on one port (`surge mock --workers 2`), the generator runs 2
# worker processes (`surge run --shards 2`), each holding 12,500 sessions. surge spreads
# the sessions toward a loopback target over source addresses by itself (127.0.0.1-
# 127.0.0.7 here, at most 4,000 sessions each), so no address runs short of ephemeral
# ports; `--bind 127.0.0.1` measures them all from one address.
# Run scripts/tune-host.sh first to see what the host allows.
#
# The mock batches the tokens of each answer per --token-tick (default 50ms): at 4,167
# answers/s one frame per token would be ~500,000 frames/s, more than two cores can
# carry on both ends; ITL is then measured at the tick's granularity. --token-tick 0
# restores one frame per token on a bigger machine.
#
# The profile's system model is the one Q19 prepares for the spike (200 orchestrator tasks
# scaled out, Bedrock provisioned units and tiering, DynamoDB warm throughput, pre-warmed
# cache; see its [system] section): the seed's everyday model answers ~105 of the 4,167
# messages/s offered.
#
# Prints the run report and the run directory (results/rehearsal-25k/<UTC timestamp>/),
# then what both sides used, sampled once a second from /proc: peak resident memory of
# the generator (coordinator and shards together) per session, and CPU seconds of the
# generator and of the mock; exits with `surge run`'s code (0 ok, 1 a threshold failed,
# 3 could not run).
#
# Usage: scripts/rehearse-25k.sh [--profile P] [--port N] [--token-tick D]
#                                [extra `surge run` flags...]
# SURGE_BIN=path uses a prebuilt surge instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=profiles/rehearsal-25k.toml
port=8080
tick=50ms
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --token-tick) tick="$2"; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) break ;;
    esac
done

if [ -n "${SURGE_BIN:-}" ]; then
    surge=$SURGE_BIN                 # a prebuilt binary (e.g. in CI artifacts)
else
    echo "== building surge (release)"
    cargo build --release --locked -p surge-cli
    surge=target/release/surge
fi

ulimit -n "$(ulimit -Hn)"
log=$(mktemp)
echo "== starting the mock: 2 workers on 127.0.0.1:$port"
"$surge" mock --profile "$profile" --listen "127.0.0.1:$port" --workers 2 \
    --token-tick "$tick" >"$log" 2>&1 &
mock=$!
trap 'kill -INT "$mock" 2>/dev/null || true; wait "$mock" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    grep -q '^listening on' "$log" && break
    kill -0 "$mock" 2>/dev/null || { cat "$log" >&2; echo "the mock did not start" >&2; exit 3; }
    sleep 0.1
done
grep -q '^listening on' "$log" || { cat "$log" >&2; echo "the mock did not start in 10 s" >&2; exit 3; }

echo "== 25,000 sessions, 250,000 msg/min: surge run --shards 2 $*"
set +e
"$surge" run "$profile" --target "ws://127.0.0.1:$port/chat" --shards 2 "$@" &
gen=$!
usage=$(mktemp)
# Once a second: resident memory and CPU of each process tree (a process's CPU as last
# seen, so a shard that exits keeps its figure up to its last second).
python3 - "$gen" "$mock" "$usage" <<'PY' &
import os, sys, time
gen, mock, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tick, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
def procs():
    kids = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
                kids.setdefault(int(f[1]), []).append((int(p), f))
            except OSError:
                pass
    return kids
def tree(kids, root):
    todo, seen = [root], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += [c for c, _ in kids.get(p, [])]
    return seen
cpu, peak = {"gen": {}, "mock": {}}, {"gen": 0, "mock": 0}
while os.path.exists(f"/proc/{gen}"):
    kids = procs()
    stat = {c: f for v in kids.values() for c, f in v}
    for name, root in (("gen", gen), ("mock", mock)):
        rss = 0
        for p in tree(kids, root):
            f = stat.get(p) or (open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
                                if os.path.exists(f"/proc/{p}/stat") else None)
            if f:
                cpu[name][p] = (int(f[11]) + int(f[12])) / tick
                rss += int(f[21]) * page
        peak[name] = max(peak[name], rss)
    time.sleep(1)
with open(out, "w") as o:
    print(f"{sum(cpu['gen'].values()):.1f} {peak['gen']} {sum(cpu['mock'].values()):.1f} {peak['mock']}", file=o)
PY
sampler=$!
wait "$gen"
code=$?
wait "$sampler"
set -e
read -r gen_cpu gen_rss mock_cpu mock_rss <"$usage"
rm -f "$usage"
sessions=$(awk -F' = ' '/^sessions = / { v = $2 + 0; if (v > n) n = v } END { print n + 0 }' "$profile")
python3 - "$gen_cpu" "$gen_rss" "$mock_cpu" "$mock_rss" "$sessions" <<'PY'
import sys
gc, gr, mc, mr, n = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"generator: {gc:.1f} CPU s, peak RSS {gr / 2**20:.0f} MiB = {gr / 1024 / max(n, 1):.1f} KiB per session ({n} sessions)")
print(f"mock:      {mc:.1f} CPU s, peak RSS {mr / 2**20:.0f} MiB")
PY
exit "$code"
