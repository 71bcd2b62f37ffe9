# The body of the one-machine rehearsals (rehearse-25k.sh, rehearse-100k.sh); sourced, not
# run. Starts `surge mock --workers $workers` on 127.0.0.1:$port with $profile's system
# model, runs `surge run $profile --shards $shards "$@"` against it, samples once a second
# from /proc what both sides use, prints it and exits with `surge run`'s code.
# The sourcing script sets the defaults of profile, port, tick, workers and shards, and
# help_lines (its usage text, for sed -n); this reads --profile, --port, --token-tick and
# --busy (one core taken by a busy loop for the whole run, a shared host's neighbour) from
# "$@", builds surge unless SURGE_BIN names one, and passes the rest to `surge run`.

busy=false
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --token-tick) tick="$2"; shift 2 ;;
        --busy) busy=true; shift ;;
        -h|--help) sed -n "$help_lines" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
echo "== starting the mock: $workers workers on 127.0.0.1:$port"
"$surge" mock --profile "$profile" --listen "127.0.0.1:$port" --workers "$workers" \
    --token-tick "$tick" >"$log" 2>&1 &
mock=$!
trap 'kill -INT "$mock" 2>/dev/null || true; wait "$mock" 2>/dev/null || true; if [ -n "${hog:-}" ]; then kill "$hog" 2>/dev/null || true; fi; rm -f "$log"' EXIT
if [ "${busy:-false}" = true ]; then
    echo "== a busy neighbour: one process spinning for the whole run (a core's worth of CPU)"
    bash -c 'while :; do :; done' &
    hog=$!
fi
for _ in $(seq 1 100); do
    grep -q '^listening on' "$log" && break
    kill -0 "$mock" 2>/dev/null || { cat "$log" >&2; echo "the mock did not start" >&2; exit 3; }
    sleep 0.1
done
grep -q '^listening on' "$log" || { cat "$log" >&2; echo "the mock did not start in 10 s" >&2; exit 3; }

echo "== $(awk -F' = ' '/^description = / { print $2; exit }' "$profile"): surge run --shards $shards $*"
set +e
"$surge" run "$profile" --target "ws://127.0.0.1:$port/chat" --shards "$shards" "$@" &
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
