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
# --busy takes one core away for the whole run (a process spinning beside it, as a
# neighbour on a shared host would): the run must then say the generator was the bottleneck.
#
# Usage: scripts/rehearse-25k.sh [--profile P] [--port N] [--token-tick D] [--busy]
#                                [extra `surge run` flags...]
# SURGE_BIN=path uses a prebuilt surge instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=profiles/rehearsal-25k.toml
port=8080
tick=50ms
workers=2 shards=2
help_lines='2,33p'
. scripts/lib/rehearse.sh
