#!/usr/bin/env bash
# Check a surge HTML report in headless Chromium: it renders, logs nothing to the console
# (no script errors), every chart has a non-empty drawing, and the page carries the given
# figures.
#
#   scripts/check-html.sh REPORT.html [--charts N] [TEXT...]
#
# TEXT arguments must each appear in the rendered DOM (e.g. the e2e p99 as the report
# prints it: "e2e p99 994.3 ms"). --charts N requires at least N rendered charts. The
# report's own inline script stores the number of charts with a non-empty bounding box on
# <body data-charts-rendered="N">; this script reads it back from --dump-dom.
#
# Chromium: $SURGE_CHROMIUM, else `chromium` on PATH (Debian: apt-get install chromium).
# Runs with a fresh profile, no sandbox (CI containers run as root), no GPU, no network
# services. Exit 0 when every check passes, 1 when one fails, 2 on bad usage.
set -euo pipefail

if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 REPORT.html [--charts N] [TEXT...]" >&2
    exit 2
fi
html="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
shift
min_charts=1
if [ "${1:-}" = "--charts" ]; then
    min_charts="$2"
    shift 2
fi
chromium="${SURGE_CHROMIUM:-chromium}"
if ! command -v "$chromium" >/dev/null 2>&1; then
    echo "check-html: no Chromium at '$chromium' (set SURGE_CHROMIUM or apt-get install chromium)" >&2
    exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu \
    --disable-background-networking --disable-component-update --disable-sync \
    --no-first-run --user-data-dir="$work/profile" \
    --enable-logging=stderr --v=0 \
    --dump-dom "file://$html" >"$work/dom.html" 2>"$work/stderr.txt" || status=$?
if [ "$status" -ne 0 ]; then
    echo "check-html: chromium exited with $status" >&2
    tail -20 "$work/stderr.txt" >&2
    exit 1
fi

fail=0
# Every console message (console.log/error, uncaught exceptions) is logged as INFO:CONSOLE.
if grep -E ':CONSOLE[:(]' "$work/stderr.txt" >"$work/console.txt"; then
    echo "check-html: console output (the report must log nothing):" >&2
    cat "$work/console.txt" >&2
    fail=1
fi
if ! grep -q '<svg' "$work/dom.html"; then
    echo "check-html: the rendered DOM has no <svg> element" >&2
    fail=1
fi
rendered="$(grep -o 'data-charts-rendered="[^"]*"' "$work/dom.html" | head -1 | cut -d'"' -f2 || true)"
total="$(grep -o '<svg class="chart"' "$work/dom.html" | wc -l | tr -d ' ' || true)"
if ! [[ "$rendered" =~ ^[0-9]+$ ]]; then
    echo "check-html: the page's render check did not run (data-charts-rendered=\"$rendered\")" >&2
    fail=1
elif [ "$rendered" -lt "$min_charts" ] || [ "$rendered" -ne "$total" ]; then
    echo "check-html: $rendered of $total charts rendered (need all, and at least $min_charts)" >&2
    fail=1
fi
for text in "$@"; do
    if ! grep -qF -- "$text" "$work/dom.html"; then
        echo "check-html: the rendered DOM does not contain: $text" >&2
        fail=1
    fi
done
if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "check-html: ok: $rendered charts rendered, no console output, $# expected texts found"
