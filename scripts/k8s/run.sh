#!/usr/bin/env bash
# Runs a profile as a multi-machine `surge run` on Kubernetes and reports its verdict.
#
#   scripts/k8s/run.sh PROFILE TARGET_URL SHARDS [--image IMG] [--upload s3://BUCKET/PREFIX]
#                      [--min-shards K] [--join-timeout 10m] [--run-id ID] [--render-only]
#
# Shard 0 (the coordinator, a Job of one pod with a ReadWriteOnce claim) and shards
# 1..SHARDS-1 (an Indexed Job) meet at the coordinator's rendezvous port, start together
# and stream their intervals to it; it writes the merged run directory. This script renders
# scripts/k8s/base with an overlay naming the run, applies it (kubectl's current context
# and namespace), waits for the coordinator, prints its log and exits with its exit code:
# 0 ok, 1 thresholds failed or aborted, 3 could not run (2: bad usage of this script).
# --render-only prints the manifests and stops: no cluster needed (scripts/k8s/validate.sh);
# they hold a fresh rendezvous key, so keep them out of logs if you mean to apply them.
# Needs kubectl (KUBECTL to use another), an image with surge (default surge:latest; see
# scripts/image.sh), and optionally the Secrets surge-target-token (key token: the target's
# bearer token) and surge-aws (AWS_* variables, for --upload without IAM roles for pods).
# Each run gets a fresh rendezvous key of its own (Secret surge-rendezvous-RUN_ID-…).
set -euo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
die() { echo "run.sh: $*" >&2; exit 2; }
[ $# -ge 3 ] || usage
profile=$1 target=$2 shards=$3
shift 3
image=surge:latest upload='' min_shards='' join_timeout=10m render_only=false
run_id=$(date -u +%Y%m%dt%H%M%Sz)
while [ $# -gt 0 ]; do
    case $1 in
        --image) image=${2:?--image needs a value}; shift 2 ;;
        --upload) upload=${2:?--upload needs a value}; shift 2 ;;
        --min-shards) min_shards=${2:?--min-shards needs a value}; shift 2 ;;
        --join-timeout) join_timeout=${2:?--join-timeout needs a value}; shift 2 ;;
        --run-id) run_id=${2:?--run-id needs a value}; shift 2 ;;
        --render-only) render_only=true; shift ;;
        *) usage ;;
    esac
done
kubectl=${KUBECTL:-kubectl}
here=$(cd "$(dirname "$0")" && pwd)

[ -f "$profile" ] || die "no profile $profile"
[[ $shards =~ ^[1-9][0-9]*$ ]] || die "SHARDS must be a positive integer, not $shards"
[ -z "$min_shards" ] || { [[ $min_shards =~ ^[1-9][0-9]*$ ]] && [ "$min_shards" -le "$shards" ]; } ||
    die "--min-shards must be between 1 and SHARDS"
[ -z "$upload" ] || [[ $upload == s3://?* ]] || die "--upload takes s3://BUCKET/PREFIX"
# The run id ends every object's name, and Job names (label values) stop at 63 characters.
[[ $run_id =~ ^[a-z0-9]([-a-z0-9]{0,28}[a-z0-9])?$ ]] ||
    die "--run-id: lower-case letters, digits and '-', at most 30, not $run_id"
case $target in ws://* | wss://*) ;; *) die "TARGET_URL must be ws:// or wss://" ;; esac

# The profile's system model ([system] file, relative to the profile) goes into the
# ConfigMap beside it. Other files a profile may name are not shipped: a trace would
# need a bigger ConfigMap than Kubernetes allows past ~1 MiB, and a tokens file holds
# credentials, which belong in a Secret.
system=$(awk '/^\[/ { in_system = ($0 ~ /^\[system\]/) }
              in_system && /^file *= *"/ { sub(/^file *= *"/, ""); sub(/".*/, ""); print; exit }' "$profile")
[ -n "$system" ] || die "$profile names no [system] file"
[[ $system != /* && $system != *..* ]] || die "the [system] file must be below the profile's folder: $system"
if grep -Eq '^[[:space:]]*(tokens_file|arrival *= *\{ *trace)' "$profile"; then
    die "$profile reads a tokens file or a trace; run.sh ships only the profile and its system model"
fi

# kustomize's images: entry wants the name apart from the tag or digest.
case $image in
    *@*) image_fields="newName: \"${image%@*}\", digest: \"${image#*@}\"" ;;
    *:*) if [[ ${image##*/} == *:* ]]; then
             image_fields="newName: \"${image%:*}\", newTag: \"${image##*:}\""
         else
             image_fields="newName: \"$image\""
         fi ;;
    *) image_fields="newName: \"$image\"" ;;
esac

# The overlay: a temporary directory, since kustomize reads generator files only from
# inside the kustomization's own directory. The base is referred to by a relative path
# (kustomize refuses absolute ones).
overlay=$(mktemp -d)
trap 'rm -rf "$overlay"' EXIT
cp "$profile" "$overlay/profile.toml"
cp "$(dirname "$profile")/$system" "$overlay/system.toml"
cp "$here/replacements.yaml" "$overlay/"
# An env file rather than YAML literals: the values need no quoting.
cat >"$overlay/run.env" <<ENV
RUN_ID=$run_id
TARGET=$target
SHARDS=$shards
OTHER_SHARDS=$((shards - 1))
PROFILE=$(basename "$profile")
SYSTEM_PATH=$system
JOIN_TIMEOUT=$join_timeout
MIN_SHARDS=$min_shards
UPLOAD=$upload
ENV
# The run's rendezvous key, fresh for every run, lives only in the cluster's Secret (and
# in the overlay's temporary directory until this script exits).
key=$(head -c 24 /dev/urandom | base64 | tr -d '\n')
printf 'key=%s\n' "$key" >"$overlay/rendezvous.env"
chmod 600 "$overlay/rendezvous.env"
cat >"$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$overlay" "$here/base")
nameSuffix: -$run_id
labels:
  - pairs: { surge-run: "$run_id" }
    includeSelectors: true        # the Service selects this run's coordinator only
images:
  - { name: surge, $image_fields }
configMapGenerator:
  - name: surge-run
    envs: [run.env]
  - name: surge-profile
    files: [profile.toml, system.toml]
secretGenerator:
  - name: surge-rendezvous
    envs: [rendezvous.env]
replacements:
  - path: replacements.yaml
YAML
manifests=$overlay/manifests.yaml
"$kubectl" kustomize "$overlay" >"$manifests"
if $render_only; then
    echo "run.sh: the manifests below hold this run's fresh rendezvous key (Secret" \
         "surge-rendezvous-$run_id-…): apply them from a file, not from a log" >&2
    cat "$manifests"
    exit 0
fi

coordinator=surge-coordinator-$run_id
"$kubectl" apply -f "$manifests"
echo "run $run_id: $shards shard(s); follow with: $kubectl logs -f job/$coordinator"

# kubectl wait watches one condition; the coordinator ends in Complete or Failed, so poll.
while :; do
    state=$("$kubectl" get "job/$coordinator" -o jsonpath='{.status.succeeded}/{.status.failed}')
    case $state in 1/* | */1) break ;; esac
    sleep 10
done
"$kubectl" logs "job/$coordinator" || true
code=$("$kubectl" get pods -l "job-name=$coordinator" \
    -o jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}' || true)
if [ -z "$code" ]; then
    echo "the coordinator's pod has no exit code (never started?): see $kubectl describe job/$coordinator" >&2
    code=3
fi

if [ -n "$upload" ]; then
    echo "results: the merged run directory under $upload/ (surge report s3://… reads it)"
else
    echo "results: the merged run directory <profile>/<time>/ on the PersistentVolumeClaim surge-results-$run_id."
    echo "to copy them here, mount the claim in a pod (the image has tar, which kubectl cp needs):"
    fetch=surge-fetch-$run_id
    echo "  $kubectl run $fetch --image $image --restart=Never --overrides='{\"spec\":{\"securityContext\":{\"runAsUser\":65532},\"volumes\":[{\"name\":\"r\",\"persistentVolumeClaim\":{\"claimName\":\"surge-results-$run_id\"}}],\"containers\":[{\"name\":\"$fetch\",\"image\":\"$image\",\"command\":[\"sleep\",\"3600\"],\"volumeMounts\":[{\"name\":\"r\",\"mountPath\":\"/results\"}]}]}}'"
    echo "  $kubectl wait --for=condition=Ready pod/$fetch && $kubectl cp $fetch:/results results-$run_id && $kubectl delete pod $fetch"
fi
# Shards 1..N-1 wrote their own directories on scratch space, which goes with their pods.
[ -z "$upload" ] || echo "the other shards had --upload too: their own directories (shard-NNN/) go there as well"
exit "$code"
