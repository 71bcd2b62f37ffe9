# Shared by the scripts that drive surge; sourced, not run. The sourcing script defines
# say MESSAGE and die CODE MESSAGE first.

# Sets $surge to the surge binary: $SURGE_BIN when set, else ROOT's target/release/surge,
# built first when cargo is installed. Dies with 3 (could not run) when there is none.
# Usage: find_surge ROOT
find_surge() {
    local root=$1
    if [ -n "${SURGE_BIN:-}" ]; then
        surge=$SURGE_BIN
    else
        surge=${CARGO_TARGET_DIR:-$root/target}/release/surge
        if command -v cargo >/dev/null 2>&1; then
            say "building surge (release)"
            cargo build --release --locked --quiet --manifest-path "$root/Cargo.toml" -p surge-cli \
                || die 3 "cannot build surge"
        fi
    fi
    [ -x "$surge" ] || die 3 "no surge binary at $surge (set SURGE_BIN or install cargo)"
}

# Writes FILE: the M/M/c queue (Poisson arrivals at RATE per second, exponential service
# with mean 1 s on SERVERS workers, every layer but the orchestrator off) for CUSTOMERS
# customers. The default, M/M/10 at 9/s, is the model bench-sim-vs-simpy.sh runs against
# SimPy and bench-builds.sh runs on two builds; bench-sim-vs-cimba.sh runs M/M/1 at 0.9/s.
# Usage: write_mmc_profile FILE CUSTOMERS [SERVERS] [RATE]   (default 10 and 9)
write_mmc_profile() {
    local file=$1 customers=$2 servers=${3:-10} rate=${4:-9} system duration
    system=$(realpath profiles/system/mangaassist.toml)
    duration=$(awk -v n="$customers" -v r="$rate" 'BEGIN { printf "%d", n / r }')
    cat > "$file" <<TOML
description = "M/M/$servers speed check"
seed = 1

[system]
file = "$system"
gateway.enabled = false
burst.enabled = false
classifier.enabled = false
memory.enabled = false
cache.enabled = false
semantic_cache.enabled = false
precomputed.enabled = false
rag.enabled = false
bedrock.enabled = false
guardrails.enabled = false
format.enabled = false
orchestrator.autoscaling.enabled = false
orchestrator.initial_tasks = $servers
orchestrator.min_tasks = $servers
orchestrator.max_tasks = $servers
orchestrator.workers_per_task = 1
orchestrator.cpu_per_message = "exp(mean=1s)"

[traffic]
arrival = "poisson"
conversation_turns = 5
reply_timeout = "1h"
connect_rate = "500/s"

[traffic.stores]
manga_jp = "100%"

[traffic.intents]
order_tracking = "100%"

[[traffic.stages]]
name = "steady"
duration = "${duration}s"
sessions = 100000                       # many users, each rarely busy: Poisson arrivals (M/M/c)
message_rate = "$rate/s"
TOML
}
