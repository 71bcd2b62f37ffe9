#!/usr/bin/env bash
# 100,000 concurrent WebSocket sessions on this one machine against surge's local mock
# (profiles/rehearsal-100k.toml: ramp 100 s at 1,000 connections/s, 60 s at 100,000
# sessions and 200,000 messages/minute, 15 s down).
#
# A process here may hold at most 20,000 open files, so both sides run 6 processes: the
# mock serves one port from 6 workers (`surge mock --workers 6`), the generator runs 6
# shards (`surge run --shards 6`), ~16,700 sessions each. Toward the loopback target surge
# spreads the sessions over 127.0.0.1-127.0.0.25 by itself (at most 4,000 per address).
# Run scripts/tune-host.sh --sessions 100000 first to see what the host allows.
#
# The mock runs in its cheapest mode: tokens batched per 1 s tick (a few frames per
# answer; ITL is then measured at that granularity). On two cores shared by both sides
# the mock's answers, not the generator, bound the message rate: 200,000 msg/min is what
# it answers on time here. The generator's own figures are what this rehearsal checks:
# memory per session, scheduling lag, errors.
#
# Prints the run report and the run directory (results/rehearsal-100k/<UTC timestamp>/),
# then what both sides used: peak resident memory of the generator (coordinator and
# shards together) per session, and CPU seconds of the generator and of the mock; exits
# with `surge run`'s code (0 ok, 1 a threshold failed, 3 could not run).
#
# Usage: scripts/rehearse-100k.sh [--profile P] [--port N] [--token-tick D] [--busy]
#                                 [extra `surge run` flags...]
# SURGE_BIN=path uses a prebuilt surge instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=profiles/rehearsal-100k.toml
port=8080
tick=1s
workers=6 shards=6
help_lines='2,25p'
. scripts/lib/rehearse.sh
