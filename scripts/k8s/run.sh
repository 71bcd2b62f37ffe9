#!/usr/bin/env bash
# Runs a profile as a multi-machine `surge run` on Kubernetes and merges the shards.
#
#   scripts/k8s/run.sh PROFILE TARGET_URL SHARDS [START_IN_SECONDS]
#
# Needs kubectl (current context), envsubst, an image with `surge` on its PATH
# (SURGE_IMAGE, default surge:latest), a ReadWriteMany PersistentVolumeClaim named
# surge-results, and optionally a Secret surge-target-token with key token. The profile
# and its system model go into the ConfigMap surge-profile. All shards start at the same
# wall-clock time (now + START_IN_SECONDS, default 90 s, so every pod is scheduled and
# pulled by then); pods' clocks must agree (NTP) to well under a second.
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
profile=$1 target=$2 shards=$3 lead=${4:-90}
here=$(dirname "$0")

export TARGET=$target SHARDS=$shards
export SURGE_IMAGE=${SURGE_IMAGE:-surge:latest}
export RUN_ID=$(date -u +%Y%m%dt%H%M%Sz)
export START_AT=$(( $(date +%s) + lead ))

# The profile and its system model, mounted at the relative path the profile names.
system=$(sed -n 's/^file = "\(.*\)"/\1/p' "$profile" | head -1)
export SYSTEM_PATH=$system
kubectl create configmap surge-profile --dry-run=client -o yaml \
    --from-file=profile.toml="$profile" \
    --from-file=system.toml="$(dirname "$profile")/$system" | kubectl apply -f -

envsubst <"$here/loadgen-job.yaml" | kubectl apply -f -
echo "run $RUN_ID: $shards shards start at $(date -u -d "@$START_AT" +%H:%M:%SZ)"
kubectl wait --for=condition=complete --timeout=6h "job/surge-$RUN_ID" || {
    echo "the shard Job did not complete; merging what the shards wrote" >&2
}
envsubst <"$here/merge-job.yaml" | kubectl apply -f -
kubectl wait --for=condition=complete --timeout=30m "job/surge-$RUN_ID-merge" || true
kubectl logs "job/surge-$RUN_ID-merge"
