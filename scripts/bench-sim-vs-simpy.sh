#!/usr/bin/env bash
# Simulator speed against SimPy on the same M/M/c model and customer count.
#
# The model: c = 10 servers, Poisson arrivals at 9/s, exponential service with mean 1 s,
# run for CUSTOMERS customers. SimPy (installed into .venv/simpy) runs the textbook
# process-based model; surge runs an ordinary profile with every layer but the
# orchestrator switched off. Both report customers per wall-clock second; the ratio is
# the figure (goal: surge ≥ 100× SimPy).
#
# This machine's speed drifts by tens of percent over minutes, so one SimPy run and one set
# of surge runs minutes apart can compare two different machines. The script therefore runs
# ROUNDS rounds; each round runs SimPy, then surge five times right after it (median of
# five: a surge run lasts well under a second), and takes the ratio of that pair. The
# figure is the median of the rounds' ratios.
#
# Usage: scripts/bench-sim-vs-simpy.sh [CUSTOMERS] [ROUNDS]   (default 1,000,000 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/common.sh
customers="${1:-1000000}"
rounds="${2:-3}"
case "$customers$rounds" in ''|*[!0-9]*) echo "CUSTOMERS and ROUNDS must be whole numbers" >&2; exit 2 ;; esac

venv=.venv/simpy
if ! "$venv/bin/python" -c 'import simpy' >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check simpy
fi
cargo build --release -q -p surge-cli
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/mmc.py" <<'PY'
import random, sys, time
import simpy

N = int(sys.argv[1])
LAM, MU, C = 9.0, 1.0, 10
random.seed(1)
waits = []

def customer(env, servers):
    arrive = env.now
    with servers.request() as req:
        yield req
        waits.append(env.now - arrive)
        yield env.timeout(random.expovariate(MU))

def source(env, servers):
    for _ in range(N):
        yield env.timeout(random.expovariate(LAM))
        env.process(customer(env, servers))

env = simpy.Environment()
servers = simpy.Resource(env, capacity=C)
env.process(source(env, servers))
t = time.perf_counter()
env.run()
wall = time.perf_counter() - t
print(f"simpy {N} customers in {wall:.2f} s: {N / wall:,.0f} customers/s, Wq {sum(waits) / len(waits):.4f} s")
PY

write_mmc_profile "$work/mmc.toml" "$customers"
# One round: SimPy, then the median of five surge runs; prints the round's ratio.
round() {
    local simpy_line surge_out surge_line wq rates=() surge_rate simpy_rate
    simpy_line=$("$venv/bin/python" "$work/mmc.py" "$customers")
    echo "  $simpy_line" >&2
    for _ in 1 2 3 4 5; do
        surge_out=$(target/release/surge simulate "$work/mmc.toml" --no-write)
        surge_line=$(grep '^simulated .* messages in' <<<"$surge_out")
        wq=$(grep -o 'Wq [0-9.]* s' <<<"$surge_out" | head -1)
        echo "  surge $surge_line ($wq)" >&2
        rates+=("$(sed -E 's/.*\(([0-9.]+) events\/s, ([0-9.]+) messages\/s\).*/\2/' <<<"$surge_line")")
    done
    surge_rate=$(printf '%s\n' "${rates[@]}" | sort -g | sed -n 3p)
    simpy_rate=$(sed -E 's/.*: ([0-9,]+) customers\/s.*/\1/; s/,//g' <<<"$simpy_line")
    awk -v a="$surge_rate" -v b="$simpy_rate" 'BEGIN { printf "%.1f %.0f %.0f\n", a / b, a, b }'
}

ratios=()
for r in $(seq 1 "$rounds"); do
    echo "round $r of $rounds" >&2
    read -r ratio surge_rate simpy_rate < <(round)
    printf 'round %d: surge (median of 5) %.0f customers/s / SimPy %.0f = %.0f×\n' \
        "$r" "$surge_rate" "$simpy_rate" "$ratio"
    ratios+=("$ratio")
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | sed -n "$(( (rounds + 1) / 2 ))p")
echo "surge / SimPy: median of $rounds rounds $(printf '%.0f' "$median")× (rounds: ${ratios[*]}; goal ≥ 100×)"
