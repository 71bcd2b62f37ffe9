#!/usr/bin/env bash
# The README's test command: every test of the workspace.
#
# Interop tests check our HdrHistogram logs against the Python `hdrhistogram` package, which
# this script installs into .venv/hdrh (git-ignored) on first use; tests against foreign
# WebSocket servers use the `websockets` package in .venv/ws. Under CI it must succeed;
# on a laptop without Python the interop test reports that it was skipped.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p surge-profile).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv/hdrh
if command -v python3 >/dev/null 2>&1; then
    if ! "$venv/bin/python" -c 'import hdrh' >/dev/null 2>&1; then
        echo "== installing the Python hdrhistogram package into $venv (interop tests)"
        if python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check hdrhistogram; then
            :
        elif [ "${CI:-}" = true ]; then
            echo "cannot install the Python hdrhistogram package; CI needs it for the interop tests" >&2
            exit 1
        else
            echo "warning: no Python hdrhistogram package; the interop tests will be skipped" >&2
        fi
    fi
    if "$venv/bin/python" -c 'import hdrh' >/dev/null 2>&1; then
        SURGE_HDRH_PYTHON="$(pwd)/$venv/bin/python"
        export SURGE_HDRH_PYTHON
    fi
elif [ "${CI:-}" = true ]; then
    echo "python3 is needed in CI for the HdrHistogram interop tests" >&2
    exit 1
fi

# Tests against WebSocket servers surge did not write (a chatbot with another frame shape,
# a chatbot to calibrate against) run on the Python `websockets` package, in .venv/ws.
ws=.venv/ws
if command -v python3 >/dev/null 2>&1; then
    if ! "$ws/bin/python" -c 'import websockets' >/dev/null 2>&1; then
        echo "== installing the Python websockets package into $ws (foreign-server tests)"
        if python3 -m venv "$ws" && "$ws/bin/pip" install --quiet --disable-pip-version-check websockets; then
            :
        elif [ "${CI:-}" = true ]; then
            echo "cannot install the Python websockets package; CI needs it for the foreign-server tests" >&2
            exit 1
        else
            echo "warning: no Python websockets package; the foreign-server tests will be skipped" >&2
        fi
    fi
    if "$ws/bin/python" -c 'import websockets' >/dev/null 2>&1; then
        SURGE_WS_PYTHON="$(pwd)/$ws/bin/python"
        export SURGE_WS_PYTHON
    fi
fi

# The HTML report check runs when Chromium is installed (CI installs it).
if [ -z "${SURGE_CHROMIUM:-}" ] && command -v chromium >/dev/null 2>&1; then
    SURGE_CHROMIUM="$(command -v chromium)"
    export SURGE_CHROMIUM
elif [ -z "${SURGE_CHROMIUM:-}" ] && [ "${CI:-}" = true ]; then
    echo "chromium is needed in CI for the HTML report check (.ci/run installs it)" >&2
    exit 1
fi

exec cargo test --workspace --locked "$@"
