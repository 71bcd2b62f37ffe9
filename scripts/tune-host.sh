#!/usr/bin/env bash
# Checks (and with --apply, raises) the host limits a large rehearsal needs.
#
# A 25,000-session run holds one socket per session in the generator and one in the mock,
# plus a few files per process. Linux caps open files per process (ulimit -n, hard limit
# here often 20,000) and ephemeral ports per source address toward one destination (the
# ip_local_port_range, ~28,000 by default). This script prints what the host allows, what
# a run of N sessions needs, and how surge gets there (--shards, --bind). It changes
# nothing unless --apply is given, and then says each change it makes.
#
# Usage: scripts/tune-host.sh [--sessions N] [--apply]
set -euo pipefail

sessions=25000
apply=false
while [ $# -gt 0 ]; do
    case "$1" in
        --sessions) sessions="$2"; shift 2 ;;
        --apply) apply=true; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
done
case "$sessions" in ''|*[!0-9]*) echo "--sessions needs a whole number, got '$sessions'" >&2; exit 2 ;; esac

soft=$(ulimit -Sn)
hard=$(ulimit -Hn)
read -r port_lo port_hi < /proc/sys/net/ipv4/ip_local_port_range
ports=$((port_hi - port_lo + 1))
per_process_budget=$(( hard == 0 ? 0 : hard - 256 ))   # room for logs, listeners, runtime

echo "open files per process   soft ${soft}, hard ${hard}"
echo "ephemeral ports          ${port_lo}-${port_hi} (${ports} per source address and destination)"
echo "sessions wanted          ${sessions}"
echo

if [ "$hard" = unlimited ]; then
    shards=1
else
    shards=$(( (sessions + per_process_budget - 1) / per_process_budget ))
fi
addrs=$(( (sessions + ports - 1) / ports ))
echo "generator: ${shards} process(es) at most ${per_process_budget} sessions each  → surge run --shards ${shards}"
echo "source addresses: ${addrs} needed for ${sessions} connections to one host:port"
if [ "$addrs" -gt 1 ]; then
    echo "  → surge run --bind 127.0.0.1-127.0.0.${addrs} (every 127.x address is loopback on Linux)"
fi
echo "mock: the same limit applies per process → surge mock --workers ${shards}"
echo

if [ "$soft" != "$hard" ]; then
    if $apply; then
        echo "raising the soft open-file limit of this shell from ${soft} to ${hard} (ulimit -n ${hard})"
        ulimit -n "$hard"
        echo "now: $(ulimit -Sn). Run surge from this shell, or add 'ulimit -n ${hard}' to your shell profile."
    else
        echo "the soft limit (${soft}) is below the hard one (${hard}); surge raises it for itself,"
        echo "or run: ulimit -n ${hard}   (or this script with --apply)"
    fi
else
    echo "the soft open-file limit already equals the hard limit; nothing to change"
fi
if [ "$hard" != unlimited ] && [ "$hard" -lt 65536 ]; then
    echo "raising the hard limit needs root and a new session (/etc/security/limits.conf,"
    echo "or LimitNOFILE= for a systemd unit); this script does not change it"
fi
