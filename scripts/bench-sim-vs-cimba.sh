#!/usr/bin/env bash
# Simulator speed against Cimba (C) and SimPy on Cimba's own M/M/1 benchmark.
#
# The model is Cimba's `benchmark/MM1_single`: one server, Poisson arrivals at 0.9/s,
# exponential service with mean 1 s, 1,000,000 customers. Cimba runs its own C program and
# SimPy its own `MM1_single.py`, both unchanged from the peer directory; surge runs the
# same queue as an ordinary profile (every layer but the orchestrator off, one worker),
# recording every message's latency as it always does. All three are timed the same way:
# the whole process, from start to exit, customers per second of wall time; each is
# single-threaded. Each also reports its mean time in the system, checked against the
# closed form W = 1/(μ − λ) = 10 s (within 10 %: waits at ρ = 0.9 are so correlated that
# one run of 1 M customers varies by a few percent; Cimba, seeded from the hardware, gave
# 9.46–10.22 s), so a fast wrong model would show.
#
# This machine's speed drifts and other work shares its cores, so the script runs ROUNDS
# rounds; each round runs Cimba five times, surge five times and SimPy once, right after
# one another, takes the median of each five and the ratios within the round. The
# figures are the medians of the rounds' ratios (goal: surge ≥ 2× Cimba).
#
# A peer that cannot be installed or built is skipped with a message, not a failure:
# Cimba needs meson, ninja and nasm (installed with apt-get when missing and possible)
# and its sources in CIMBA_SRC; SimPy is installed into .venv/simpy.
#
# Usage: scripts/bench-sim-vs-cimba.sh [ROUNDS]   (default 3; SURGE_BIN picks the binary,
#        CIMBA_SRC the Cimba sources, default ../shared/peers/cimba beside this checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "== $*" >&2; }
die() { echo "bench-sim-vs-cimba: $2" >&2; exit "$1"; }
skip() { echo "== SKIPPED $1: $2" >&2; }
. scripts/lib/common.sh
rounds="${1:-3}"
case "$rounds" in ''|*[!0-9]*|0) die 2 "ROUNDS must be a whole number above 0" ;; esac
customers=1000000 # fixed in Cimba's and SimPy's benchmark programs
peers=$(realpath -m "${CIMBA_SRC:-../shared/peers/cimba}")
expected_w=10     # 1 / (μ − λ) with μ = 1, λ = 0.9

find_surge "$(pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- Cimba: build its benchmark, or say why not ------------------------------------------
cimba=""
build_cimba() {
    [ -f "$peers/benchmark/MM1_single.c" ] || { skip Cimba "no sources at $peers (set CIMBA_SRC)"; return 1; }
    local missing=()
    command -v meson >/dev/null 2>&1 || missing+=(meson)
    command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
    command -v nasm >/dev/null 2>&1 || missing+=(nasm)
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    if [ ${#missing[@]} -gt 0 ]; then
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
        say "installing ${missing[*]} for Cimba"
        if ! { "${sudo[@]}" apt-get install -y "${missing[@]}" >"$work/apt.log" 2>&1 \
                || { "${sudo[@]}" apt-get update >>"$work/apt.log" 2>&1 \
                     && "${sudo[@]}" apt-get install -y "${missing[@]}" >>"$work/apt.log" 2>&1; }; }; then
            skip Cimba "cannot install ${missing[*]} with apt-get ($(tail -1 "$work/apt.log"))"
            return 1
        fi
    fi
    say "building Cimba's MM1_single (meson, release)"
    cp -r "$peers" "$work/cimba"
    # gcc 12 lacks two C23 spellings the sources use; the headers supply them.
    if ! (cd "$work/cimba" \
            && CFLAGS="-include assert.h -include stdbool.h -include stddef.h" meson setup build \
                --buildtype=release -Denable_docs=false -Denable_cuda_tutorials=false \
            && ninja -C build benchmark/MM1_single) >"$work/cimba-build.log" 2>&1; then
        skip Cimba "the build failed (last line: $(tail -1 "$work/cimba-build.log"))"
        return 1
    fi
    cimba=$work/cimba/build/benchmark/MM1_single
}
build_cimba || true

# ---- SimPy: in its own venv, as bench-sim-vs-simpy.sh installs it ------------------------
simpy=""
venv=.venv/simpy
if [ ! -f "$peers/benchmark/MM1_single.py" ]; then
    skip SimPy "no MM1_single.py at $peers/benchmark (set CIMBA_SRC)"
elif "$venv/bin/python" -c 'import simpy' >/dev/null 2>&1 \
        || { python3 -m venv "$venv" >"$work/venv.log" 2>&1 \
             && "$venv/bin/pip" install --quiet --disable-pip-version-check simpy >>"$work/venv.log" 2>&1; }; then
    simpy=$peers/benchmark/MM1_single.py
else
    skip SimPy "cannot install SimPy into $venv ($(tail -1 "$work/venv.log"))"
fi

write_mmc_profile "$work/mm1.toml" "$customers" 1 0.9

# ---- one timed run -------------------------------------------------------------------------
# Runs COMMAND with its output in $work/out; prints "customers/s  W" where W is the mean
# time in the system that the tool reported. Dies when a run fails or W is off.
TIMEFORMAT='%R'
timed() {
    local tool=$1 wall w count=$customers
    shift
    { time "$@" >"$work/out" 2>"$work/err"; } 2>"$work/time" \
        || die 3 "$tool failed: $(tail -1 "$work/err")"
    wall=$(tail -1 "$work/time")
    case $tool in
        cimba) w=$(sed -nE 's/^Average system time ([0-9.]+).*/\1/p' "$work/out") ;;
        simpy) w=$(sed -nE 's/^Average time in system: ([0-9.]+).*/\1/p' "$work/out") ;;
        surge)
            w=$(sed -nE 's/^latency \(ms\): mean e2e ([0-9.]+),.*/\1/p' "$work/out" \
                | awk '{ printf "%.6f", $1 / 1000 }')
            count=$(sed -nE 's/^simulated ([0-9]+) messages in.*/\1/p' "$work/out")
            ;;
    esac
    if [ -z "$w" ] || [ -z "$count" ]; then
        die 3 "$tool printed no mean time in system: $(head -3 "$work/out")"
    fi
    awk -v w="$w" -v e="$expected_w" 'BEGIN { exit !(w > e * 0.9 && w < e * 1.1) }' \
        || die 3 "$tool's mean time in system $w s is not within 10 % of $expected_w s"
    awk -v n="$count" -v s="$wall" -v w="$w" 'BEGIN { printf "%.0f %.3f\n", n / s, w }'
}

# Median of five runs of TOOL COMMAND: prints "customers/s  W" of the median run.
median5() {
    local tool=$1 runs=()
    shift
    for _ in 1 2 3 4 5; do
        runs+=("$(timed "$tool" "$@")")
        echo "   $tool ${runs[-1]% *} customers/s, W ${runs[-1]#* } s" >&2
    done
    printf '%s\n' "${runs[@]}" | sort -g | sed -n 3p
}

median() { sort -g | sed -n "$(( (rounds + 1) / 2 ))p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f\n", a / b }'; }

: > "$work/vs-cimba"
: > "$work/vs-simpy"
for r in $(seq 1 "$rounds"); do
    say "round $r of $rounds"
    read -r surge_rate surge_w < <(median5 surge "$surge" simulate "$work/mm1.toml" --no-write)
    line="round $r: surge $surge_rate customers/s (W $surge_w s)"
    if [ -n "$cimba" ]; then
        read -r cimba_rate cimba_w < <(median5 cimba "$cimba")
        ratio "$surge_rate" "$cimba_rate" >> "$work/vs-cimba"
        line+=", Cimba $cimba_rate (W $cimba_w s): $(tail -1 "$work/vs-cimba")×"
    fi
    if [ -n "$simpy" ]; then
        read -r simpy_rate simpy_w < <(timed simpy "$venv/bin/python" "$simpy")
        echo "   simpy $simpy_rate customers/s, W $simpy_w s" >&2
        ratio "$surge_rate" "$simpy_rate" >> "$work/vs-simpy"
        line+=", SimPy $simpy_rate (W $simpy_w s): $(tail -1 "$work/vs-simpy")×"
    fi
    echo "$line"
done

summary() {
    local peer=$1 file=$2 goal=$3
    if [ -s "$file" ]; then
        echo "surge / $peer: median of $rounds rounds $(median < "$file")× (rounds: $(paste -sd' ' "$file"))$goal"
    else
        echo "surge / $peer: skipped (see above)"
    fi
}
summary Cimba "$work/vs-cimba" "; goal ≥ 2×"
summary SimPy "$work/vs-simpy" ""
echo "(M/M/1, λ = 0.9, μ = 1, $customers customers, whole-process wall time; W = 1/(μ − λ) = $expected_w s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))"
