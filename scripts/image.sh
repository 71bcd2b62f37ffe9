#!/usr/bin/env bash
# Builds the surge container image from the repository's Containerfile.
#
#   scripts/image.sh [IMAGE]      (default surge:latest)
#
# With podman if it is installed, else docker. Push it where the cluster pulls from
# (`podman push IMAGE`) and give it to scripts/k8s/run.sh --image. Needs the base images
# (docker.io rust:1-slim-bookworm, debian:bookworm-slim) to be pullable; where they are
# not, scripts/check-image.sh checks the binary's own image layout offline.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${1:-surge:latest}
if command -v podman >/dev/null 2>&1; then
    engine=podman
elif command -v docker >/dev/null 2>&1; then
    engine=docker
else
    echo "image.sh: neither podman nor docker is installed" >&2
    exit 1
fi
"$engine" build --file Containerfile --tag "$image" .
echo "built $image with $engine"
