#!/usr/bin/env bash
# Checks, offline, that surge runs from an image laid out as the Containerfile's: by hand
# only, not in CI (CI's 30 minutes are mostly taken, and this installs podman).
#
#   scripts/check-image.sh      SURGE_BINARY: the binary to ship (default
#                               target/release/surge, built if missing);
#                               SURGE_IMAGE_STORAGE=vfs: skip trying overlay storage
#
# The real image (scripts/image.sh) needs its base images pulled, which a machine without
# a registry cannot do, and containers may not start in a sandbox. So this builds an image
# FROM scratch holding /usr/local/bin/surge, the shared libraries ldd names and the
# dynamic loader, the shipped profiles at /opt/surge/profiles and an /etc/passwd whose
# surge user is uid 65532 (the Containerfile's); creates a container of it without
# starting it, mounts its root filesystem, and runs `surge --version` and a 90-second
# simulation of profiles/local.toml chrooted into it as uid 65532, from the image's own
# files. Its report must equal the host's; its run directory must be whole.
#
# Podman runs with a storage of its own in a temporary directory (--root/--runroot),
# removed at the end with everything in it; overlay storage if the kernel allows it
# here, else vfs. Building FROM scratch with COPY only runs no container, so no runtime
# (crun, and its rlimits) is involved.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "check-image.sh: run as root (podman storage, chroot)" >&2; exit 1; }
if ! command -v podman >/dev/null 2>&1; then
    echo "== installing podman"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman >/dev/null
fi
binary=${SURGE_BINARY:-target/release/surge}
if [ ! -x "$binary" ]; then
    echo "== building $binary"
    cargo build --release --locked -p surge-cli
fi
binary=$(realpath "$binary")

work=$(mktemp -d /var/tmp/surge-image.XXXXXX)
image=localhost/surge-check:$$
podman_=(podman --root "$work/storage" --runroot "$work/run")
container=''
cleanup() {
    if [ -n "$container" ]; then
        "${podman_[@]}" umount "$container" >/dev/null 2>&1 || true
        "${podman_[@]}" rm -f "$container" >/dev/null 2>&1 || true
    fi
    "${podman_[@]}" rmi -f "$image" >/dev/null 2>&1 || true
    # Overlay storage may leave a mount behind if podman was interrupted.
    findmnt -rn -o TARGET | grep "^$work/" | sort -r | xargs -r umount -l || true
    rm -rf "$work"
}
trap cleanup EXIT
started=$(date +%s%N)
lap() { local ms=$((($(date +%s%N) - started) / 1000000)); printf '  (%d.%03d s since the start)\n' $((ms / 1000)) $((ms % 1000)); }

echo "== the image's root filesystem ($work/context/rootfs)"
root=$work/context/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/opt/surge" "$root/tmp" "$work/context/home"
cp "$binary" "$root/usr/local/bin/surge"
# Every library ldd resolves ("name => /path (addr)") and the loader ("/path (addr)"),
# copied as files (-L) to the path the binary will look for them at.
ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
    while read -r lib; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
        echo "  $lib"
    done
cp -r profiles "$root/opt/surge/profiles"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nsurge:x:65532:65532:surge:/work:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nsurge:x:65532:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"
cat >"$work/context/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
# COPY makes root the owner of what it copies, unless told otherwise.
COPY --chown=65532:65532 home/ /work/
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/surge"]
CONTAINERFILE
lap

driver=${SURGE_IMAGE_STORAGE:-overlay}
echo "== podman build (FROM scratch)"
if ! "${podman_[@]}" --storage-driver "$driver" build --quiet --tag "$image" "$work/context" >/dev/null 2>"$work/build.err"; then
    echo "  $driver storage failed here ($(tail -1 "$work/build.err")); trying vfs"
    rm -rf "$work/storage" "$work/run"
    driver=vfs
    "${podman_[@]}" --storage-driver vfs build --quiet --tag "$image" "$work/context" >/dev/null
fi
podman_+=(--storage-driver "$driver")
echo "  storage driver $driver; $("${podman_[@]}" image inspect --format '{{.Size}}' "$image") bytes"
lap

echo "== surge from the image's files, chrooted, as uid 65532"
# A container (created, never started) rather than the image itself: its mount is a
# writable layer on top, so the simulation's run directory does not alter the image.
container=$("${podman_[@]}" create "$image")
mnt=$("${podman_[@]}" mount "$container")
as_surge=(chroot --userspec=65532:65532 "$mnt")
version=$("${as_surge[@]}" /usr/local/bin/surge --version)
[ "$version" = "$("$binary" --version)" ] || { echo "--version says $version" >&2; exit 1; }
echo "  $version"
"${as_surge[@]}" /usr/local/bin/surge simulate /opt/surge/profiles/local.toml --out /work/results \
    >"$work/image-report.txt"
"$binary" simulate profiles/local.toml --no-write >"$work/host-report.txt"
# The same seed gives the same report, but for the wall time and where it was written.
varying='^(simulated [0-9]+ messages in .* wall|run directory:)'
diff <(grep -Ev "$varying" "$work/host-report.txt") <(grep -Ev "$varying" "$work/image-report.txt") >&2 ||
    { echo "the image's simulation differs from the host's" >&2; exit 1; }
head -1 "$work/image-report.txt" | sed 's/^/  /'
run=$(find "$mnt/work/results/local" -mindepth 1 -maxdepth 1 -type d)
for f in run.json summary.json timeline.csv shard-000.hlog; do
    [ -s "$run/$f" ] || { echo "the run directory lacks $f" >&2; exit 1; }
done
[ "$(stat -c %u "$run/summary.json")" = 65532 ] || { echo "summary.json is not uid 65532's" >&2; exit 1; }
echo "  run directory /work/results/local/$(basename "$run")/: run.json summary.json timeline.csv shard-000.hlog, owned by 65532"
lap
echo "image check passed (podman --root/--runroot in $work, --storage-driver $driver)"
