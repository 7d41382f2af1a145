#!/usr/bin/env bash
# Makes the pod sandbox ("pause") image locally: pause.c built statically, alone in an image,
# since no registry's pause image can be pulled here. Needs buildah and gcc (static libc).
# Prints the image name on its last line of stdout.
set -euo pipefail
IMAGE="${PAUSE_IMAGE:-localhost/failover-pause:local}"
src="$(dirname "$0")/pause.c"
sum=$(sha256sum "$src" | cut -c1-16)
if [[ "$(buildah inspect --type image --format '{{index .Docker.Config.Labels "io.failover.source"}}' "$IMAGE" 2>/dev/null || true)" == "$sum" ]]; then
  echo "$IMAGE"; exit 0
fi
command -v gcc >/dev/null || { echo "gcc is missing: apt-get install gcc libc6-dev" >&2; exit 1; }
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
gcc -static -Os -s -o "$work/pause" "$src"
c=$(buildah from scratch)
buildah copy --quiet "$c" "$work/pause" /pause >/dev/null
buildah config --entrypoint '["/pause"]' --user 65535:65535 --label "io.failover.source=$sum" "$c"
buildah commit --quiet --rm "$c" "$IMAGE" >/dev/null
echo "$IMAGE"
