#!/usr/bin/env bash
# surge's load generator against its peers, at equal sessions and message rate, against the
# same local mock: messages per CPU-second and memory per session.
#
#   surge      surge run (one process)
#   Tsung      apt-get install tsung       (Erlang; websocket sessions, ts_websocket)
#   Artillery  npm install artillery       (Node.js; engine: ws)
#   bare       crates/loadgen/examples/bare_client.rs: tokio and tungstenite as surge,
#              sending on a timer and dropping every frame, measuring nothing
#
# Every tool opens SESSIONS WebSocket sessions over RAMP seconds and sends MESSAGES
# messages per session, one every GAP seconds (rate = SESSIONS / GAP msg/s), all the same
# text (a product question the mock answers from its product cache: one token frame and a
# done frame), so every tool is offered the same load and gets the same answers back. The
# mock serves the system model of profiles/rehearsal-25k.toml (sized for 4,167 msg/s), so
# it answers every message at this rate instead of queueing them behind the everyday
# model's 10 orchestrator tasks. CPU time and peak memory come from getrusage of the
# tool's own process tree (Python's resource module, so GNU time is not needed); the mock
# is a separate process tree and is not counted; "kernel µs per message" is the tree's
# system time over its messages, the part no user-space work can remove (on loopback it
# includes the mock's side of each TCP exchange). Messages are what each tool reports
# sending (surge: summary.json; Artillery: websocket.messages_sent; Tsung: its
# request_noack count), next to what the mock's own counter says it answered for that
# tool's run. surge's users wait for each answer before the next message (open model with
# late messages) and time every frame (e2e, ttft, itl, service, lag); Tsung and Artillery
# (and the bare client) here send on a timer and time nothing. A tool that is not
# installed is skipped unless --install.
#
# Usage: scripts/bench-loadgen-peers.sh [--sessions N] [--messages M] [--gap S]
#        [--ramp S] [--port P] [--install] [--only surge|tsung|artillery|bare]
# Results: a table on stdout and results/peers-<UTC timestamp>.md.
# SURGE_BIN=path uses a prebuilt surge instead of building one, BARE_BIN=path a prebuilt
# bare_client, ARTILLERY_BIN=path a prebuilt artillery.
set -euo pipefail
cd "$(dirname "$0")/.."

sessions=2000 messages=20 gap=3 ramp=10 port=8790 install=false only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sessions) sessions="$2"; shift 2 ;;
        --messages) messages="$2"; shift 2 ;;
        --gap) gap="$2"; shift 2 ;;
        --ramp) ramp="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --install) install=true; shift ;;
        --only) only="$2"; shift 2 ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done
duration=$(( ramp + messages * gap + 5 ))
work=$(mktemp -d)
trap 'kill -INT "${mock:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
ulimit -n "$(ulimit -Hn)"

if [ -n "${SURGE_BIN:-}" ]; then
    surge=$SURGE_BIN
else
    cargo build --release --locked -p surge-cli
    surge=$PWD/target/release/surge
fi

"$surge" mock --profile profiles/rehearsal-25k.toml --listen "127.0.0.1:$port" >"$work/mock.log" 2>&1 &
mock=$!
for _ in $(seq 1 100); do grep -q '^listening on' "$work/mock.log" && break; sleep 0.1; done
grep -q '^listening on' "$work/mock.log" || { cat "$work/mock.log" >&2; exit 3; }
url="ws://127.0.0.1:$port/chat"
# The one message every tool sends (a product_info sample of the system model).
text="When is the new One Piece volume released?"

# measure NAME CMD...: runs CMD, prints "cpu_s maxrss_kb wall_s system_s".
measure() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=sys.stderr.fileno())
wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.2f} {r.ru_maxrss} {wall:.1f} {r.ru_stime:.2f}")
PY
}

# Chat messages the mock has served so far (its own counter, the same for every tool).
served() {
    python3 - "http://127.0.0.1:$port/metrics" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith('surge_mock_requests_total{') and 'api="chat"' in l)))
PY
}

rows=()
record() { # tool messages "cpu rss wall system" served_before
    read -r cpu rss wall sys <<<"$3"
    local after; after=$(served)
    rows+=("$(python3 -c "
m,c,r,s,v,k=$2,$cpu,$rss,$sessions,$after-$4,$sys
print(f'| $1 | {s} | {m} | {v} | {c:.1f} | {m/max(c,0.01):,.0f} | {1e6*k/max(m,1):.1f} | {r/1024:.0f} | {r/s:.1f} | $wall |')")")
}

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

if want surge; then
    profile="$work/peers.toml"
    sed -e "s|^duration = .*|duration = \"${duration}s\"|" profiles/local.toml \
        | sed -e '/^\[\[traffic.stages\]\]/,$d' >"$profile"
    sed -i "s|^file = \"system/|file = \"$PWD/profiles/system/|" "$profile"
    sed -i 's|^arrival = .*|arrival = "constant"|' "$profile"
    # Only the peers' message: every answer is the same template answer theirs get.
    sed -i '/^\[traffic.intents\]/,/^$/c\[traffic.intents]\nproduct_info = "100%"\n' "$profile"
    sed -i "/^bedrock.streaming = /a intents.product_info.texts = [\"$text\"]" "$profile"
    cat >>"$profile" <<TOML
[[traffic.stages]]
name = "peers"
duration = "${duration}s"
ramp = "${ramp}s"
sessions = $sessions
session_rate = "$(python3 -c "print(round(60/$gap, 3))")/min"
TOML
    sed -i '/^\[thresholds\]/,/^$/d; /^"[a-z0-9.:]*" = "/d' "$profile"
    echo "== surge: $sessions sessions, one message every ${gap}s each, ${duration}s"
    out="$work/surge-out"
    before=$(served)
    m=$(measure "$surge" run "$profile" --target "$url" --out "$out" --no-progress)
    sent=$(python3 -c "import json,glob;print(json.load(open(glob.glob('$out/*/*/summary.json')[0]))['counts']['sent'])")
    record surge "$sent" "$m" "$before"
fi

if want bare; then
    bare=${BARE_BIN:-}
    if [ -z "$bare" ]; then
        cargo build --release --locked -q -p surge-loadgen --example bare_client
        bare=$PWD/target/release/examples/bare_client
    fi
    echo "== bare client: $sessions sessions, one message every ${gap}s each, nothing measured"
    before=$(served)
    m=$(measure sh -c "exec '$bare' '$url' $sessions $messages $gap $ramp '$text' >'$work/bare.out'")
    sent=$(sed -n 's/^messages //p' "$work/bare.out")
    record bare "${sent:-0}" "$m" "$before"
fi

if want tsung; then
    if ! command -v tsung >/dev/null && $install; then apt-get install -y tsung >/dev/null; fi
    if command -v tsung >/dev/null; then
        cat >"$work/tsung.xml" <<XML
<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="error">
  <clients><client host="localhost" use_controller_vm="true" maxusers="$((sessions + 100))"/></clients>
  <servers><server host="127.0.0.1" port="$port" type="tcp"/></servers>
  <load><arrivalphase phase="1" duration="$((ramp * 2))" unit="second">
    <users maxnumber="$sessions" arrivalrate="$(python3 -c "print($sessions/$ramp)")" unit="second"/>
  </arrivalphase></load>
  <sessions><session probability="100" name="chat" type="ts_websocket">
    <request><websocket type="connect" path="/chat"/></request>
    <for from="1" to="$messages" incr="1" var="i">
      <request subst="true"><websocket type="message" ack="no_ack" frame="text">{"type":"message","session":"s%%_tsung_userid%%","id":"m%%_i%%","store":"manga_jp","text":"$text"}</websocket></request>
      <thinktime value="$gap" random="false"/>
    </for>
  </session></sessions>
</tsung>
XML
        echo "== Tsung"
        before=$(served)
        m=$(measure tsung -f "$work/tsung.xml" -l "$work/tsung-log" start)
        # The last cumulative count of messages sent without waiting for an ack.
        sent=$(awk '$2 == "request_noack" { n = $4 } END { print n + 0 }' "$work"/tsung-log/*/tsung.log)
        record tsung "$sent" "$m" "$before"
    else
        echo "== Tsung not installed (apt-get install tsung, or --install): skipped"
    fi
fi

if want artillery; then
    art="$work/node_modules/.bin/artillery"
    if ! command -v artillery >/dev/null && [ ! -x "$art" ] && $install; then
        # Artillery pulls in Playwright, whose install would download browsers: not needed.
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --silent --no-audit --no-fund \
            --prefix "$work" artillery >/dev/null
    fi
    command -v artillery >/dev/null && art=$(command -v artillery)
    [ -n "${ARTILLERY_BIN:-}" ] && art=$ARTILLERY_BIN
    if [ -x "$art" ]; then
        cat >"$work/artillery.yml" <<YML
config:
  target: "$url"
  phases:
    - duration: $ramp
      arrivalCount: $sessions
scenarios:
  - engine: ws
    flow:
      - loop:
          - send: '{"type":"message","session":"s-{{ \$uuid }}","id":"m-{{ \$loopCount }}","store":"manga_jp","text":"$text"}'
          - think: $gap
        count: $messages
YML
        echo "== Artillery"
        before=$(served)
        m=$(measure "$art" run --output "$work/artillery.json" "$work/artillery.yml")
        sent=$(python3 -c "import json;print(json.load(open('$work/artillery.json'))['aggregate']['counters'].get('websocket.messages_sent',0))")
        record artillery "$sent" "$m" "$before"
    else
        echo "== Artillery not installed (npm install artillery, or --install): skipped"
    fi
fi

stamp=$(date -u +%Y-%m-%dT%H-%M-%SZ)
mkdir -p results
report="results/peers-$stamp.md"
{
    echo "# Load generators at equal load ($stamp)"
    echo
    echo "$sessions sessions over ${ramp}s, $messages messages each, one every ${gap}s; local mock; $(nproc) cores."
    echo
    echo "| tool | sessions | messages (tool) | answered (mock) | CPU s | messages per CPU-second | kernel µs per message | peak RSS MB | KB per session | wall s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} | tee "$report"
