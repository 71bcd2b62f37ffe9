#!/usr/bin/env bash
# A release build of surge optimised with the profile of its own everyday work (PGO):
# the binary to ship when speed matters, ~10-13 % faster in the simulator than `cargo
# build --release` (results/BENCHMARKS.md, "a build trained on its own work").
#
# Three steps, each in its own target directory so the everyday build is untouched:
#   1. an instrumented build (-Cprofile-generate);
#   2. training on what surge is run for, never on a benchmark's own model: `surge
#      simulate` of every shipped profile (profiles/*.toml, the two-hour spike included),
#      one `surge bench` (the mock's chatbot and the load generator on the default
#      profile) and 20,000 requests to each of the mock's DynamoDB PutItem and GetItem and
#      Bedrock ConverseStream (code no run trains is laid out as cold, and runs slower);
#   3. the optimised build (-Cprofile-use) from the merged profile.
# About 20 minutes on two cores. Needs rustup's llvm-tools component for llvm-profdata
# (installed here when missing; the script stops with a message when it cannot be).
#
# Usage: scripts/build-pgo.sh [OUT]   (default target/pgo/release/surge; the path of the
#        binary is the last line printed)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "== $*" >&2; }
die() { echo "build-pgo: $2" >&2; exit "$1"; }

out=${1:-target/pgo/release/surge}
command -v cargo >/dev/null 2>&1 || die 3 "cargo is needed"
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata
if [ ! -x "$profdata" ]; then
    say "installing rustup's llvm-tools (for llvm-profdata)"
    rustup component add llvm-tools >/dev/null 2>&1 \
        || die 3 "no llvm-profdata at $profdata and \`rustup component add llvm-tools\` failed"
fi

work=$(mktemp -d)
mock=""
trap '[ -z "$mock" ] || kill "$mock" 2>/dev/null; rm -rf "$work"' EXIT
export CARGO_INCREMENTAL=0

say "1/3 instrumented build (target/pgo-generate)"
RUSTFLAGS="-Cprofile-generate=$work/raw" cargo build --release --locked --quiet \
    -p surge-cli --bin surge --target-dir target/pgo-generate
trained=target/pgo-generate/release/surge

say "2/3 training: surge simulate of every shipped profile, then one surge bench"
for profile in profiles/*.toml; do
    # A profile whose thresholds fail still ran (exit 1); only 2 and 3 are failures.
    status=0
    "$trained" simulate "$profile" --no-write >/dev/null 2>"$work/err" || status=$?
    [ "$status" -le 1 ] || die 3 "training on $profile failed: $(tail -1 "$work/err")"
done
status=0
"$trained" bench --out "$work/bench" >/dev/null 2>"$work/err" || status=$?
[ "$status" -le 1 ] || die 3 "training with surge bench failed: $(tail -1 "$work/err")"
# The mock's AWS APIs, which surge bench does not call over HTTP (its chatbot holds its
# back ends in process): the load client of bench-mock.sh, uninstrumented.
say "2/3 training: the mock's DynamoDB and Bedrock APIs"
cargo build --release --locked --quiet -p surge-mock --example loadclient
"$trained" mock --profile crates/mock/bench/profile.toml --listen 127.0.0.1:0 \
    >"$work/mock.out" 2>/dev/null &
mock=$!
for _ in $(seq 1 100); do grep -q '^listening on ' "$work/mock.out" && break; sleep 0.1; done
address=$(sed -n 's/^listening on //p' "$work/mock.out" | head -1)
[ -n "$address" ] || die 3 "the instrumented mock did not start"
for mode in dynamodb-put dynamodb-get bedrock-stream; do
    "${CARGO_TARGET_DIR:-target}/release/examples/loadclient" "http://$address" "$mode" 20000 64 >/dev/null \
        || die 3 "training the mock with $mode failed"
done
# Ctrl-C: the mock exits as it always does, writing its profile on the way out.
kill -INT "$mock"
wait "$mock" || true
mock=""
"$profdata" merge -o "$work/merged.profdata" "$work/raw"

say "3/3 optimised build (target/pgo)"
RUSTFLAGS="-Cprofile-use=$work/merged.profdata" cargo build --release --locked --quiet \
    -p surge-cli --bin surge --target-dir target/pgo
if [ "$out" != target/pgo/release/surge ]; then
    mkdir -p "$(dirname "$out")"
    cp target/pgo/release/surge "$out"
fi
echo "$out"
