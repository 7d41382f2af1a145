#!/usr/bin/env bash
# Makes the Dockerfile's base image on a machine that cannot pull from a registry: a Debian
# root filesystem (debootstrap --variant=minbase, cached) plus Node.js and npm from the npm
# registry and a `node` user (uid 1000), shaped like the official node:<version>-slim image, and
# imports it into the local image store under that name. `make image` builds against it with
# BASE_IMAGE=<that name> instead of the digest the Dockerfile pins.
#
# Usage: make-base.sh ENGINE   (podman, buildah or docker). Needs root for debootstrap.
# Prints the image name on its last line of stdout.
set -euo pipefail

ENGINE="${1:?usage: make-base.sh podman|buildah|docker}"
NODE_VERSION="${NODE_VERSION:-$(sed -n 's/^ARG NODE_VERSION=//p' "$(dirname "$0")/../../Dockerfile")}"
NPM_VERSION="${NPM_VERSION:-11.19.1}"
SUITE="${DEBIAN_SUITE:-bookworm}"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
case "$ARCH" in amd64) NODE_ARCH=x64 ;; arm64) NODE_ARCH=arm64 ;; *) echo "unsupported architecture $ARCH" >&2; exit 1 ;; esac
IMAGE="docker.io/library/node:${NODE_VERSION}-slim"
KEY="debian-${SUITE}_node-${NODE_VERSION}_npm-${NPM_VERSION}_${ARCH}"
CACHE_ROOT="${FAILOVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/failover-operator}"
OUT="$CACHE_ROOT/image-base/$KEY"

say() { printf '[image base] %s\n' "$*" >&2; }

# Already in the store, made by this script for the same key.
label() {
  case "$ENGINE" in
    buildah) buildah inspect --type image --format '{{index .ImageAnnotations "io.failover.base-key"}}{{index .Docker.Config.Labels "io.failover.base-key"}}' "$IMAGE" 2>/dev/null ;;
    *) "$ENGINE" image inspect --format '{{index .Config.Labels "io.failover.base-key"}}' "$IMAGE" 2>/dev/null ;;
  esac
}
if [[ "$(label || true)" == *"$KEY"* ]]; then
  say "in the image store: $IMAGE ($KEY)"
  echo "$IMAGE"
  exit 0
fi

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
start=$(date +%s)

if [[ ! -f "$OUT/rootfs.tar" ]]; then
  command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install debootstrap"; exit 1; }
  [[ $(id -u) == 0 ]] || { say "debootstrap needs root: run as root or with sudo"; exit 1; }
  # The Debian mirror apt already uses on this machine, unless DEBIAN_MIRROR says otherwise.
  mirror="${DEBIAN_MIRROR:-$(grep -hs -m1 -oP '^URIs:\s*\K\S+' /etc/apt/sources.list.d/debian.sources || true)}"
  mirror="${mirror:-$(grep -hs -m1 -oP '^deb\s+(\[[^]]*\]\s+)?\K\S+' /etc/apt/sources.list || true)}"
  # Debian's cloud images name a file of mirrors (mirror+file:/...): debootstrap takes the first.
  if [[ "$mirror" == mirror+file:* ]]; then
    mirror=$(grep -m1 -oE '^[a-z]+://[^[:space:]]+' "${mirror#mirror+file:}" 2>/dev/null || true)
  fi
  [[ "$mirror" == http://* || "$mirror" == https://* ]] \
    || { say "no http(s) Debian mirror in apt's sources (found '${mirror}'); set DEBIAN_MIRROR"; exit 1; }
  root="$OUT/rootfs"
  rm -rf "$root" && mkdir -p "$root"
  say "debootstrap --variant=minbase $SUITE (a few minutes the first time; cached after)"
  debootstrap --variant=minbase --arch="$ARCH" "$SUITE" "$root" "$mirror" >"$OUT/debootstrap.log" 2>&1 \
    || { say "debootstrap failed: $OUT/debootstrap.log"; tail -n 20 "$OUT/debootstrap.log" >&2; exit 1; }
  # What the -slim images leave out: apt's lists and caches, documentation, man pages, locales.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/* \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true

  say "Node.js $NODE_VERSION and npm $NPM_VERSION from the npm registry"
  work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
  ( cd "$work" && npm pack --silent "node-linux-${NODE_ARCH}@${NODE_VERSION}" "npm@${NPM_VERSION}" >/dev/null )
  mkdir -p "$work/node" "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/node-linux-*.tgz -C "$work/node" --strip-components=1
  install -m 0755 "$work/node/bin/node" "$root/usr/local/bin/node"
  tar -xzf "$work"/npm-*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

  # The official image's `node` user and group, uid and gid 1000.
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$root/etc/passwd"
  echo 'node:x:1000:' >>"$root/etc/group"
  echo 'node:*:20000:0:99999:7:::' >>"$root/etc/shadow"
  install -d -o 1000 -g 1000 "$root/home/node"

  tar --numeric-owner -C "$root" -cf "$OUT/rootfs.tar.tmp" .
  mv "$OUT/rootfs.tar.tmp" "$OUT/rootfs.tar"
  rm -rf "$root"
fi

say "importing $IMAGE"
changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
         --change "ENV NODE_VERSION=$NODE_VERSION"
         --change "LABEL io.failover.base-key=$KEY"
         --change 'CMD ["node"]')
case "$ENGINE" in
  podman | docker) "$ENGINE" import "${changes[@]}" "$OUT/rootfs.tar" "$IMAGE" >/dev/null ;;
  # buildah has no import: podman and buildah share one image store, so use a scratch container.
  buildah)
    c=$(buildah from scratch)
    buildah add --quiet "$c" "$OUT/rootfs.tar" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env "NODE_VERSION=$NODE_VERSION" --label "io.failover.base-key=$KEY" --cmd node "$c"
    buildah commit --quiet --rm "$c" "$IMAGE" >/dev/null ;;
  *) say "unknown engine $ENGINE"; exit 1 ;;
esac
say "done in $(( $(date +%s) - start ))s: $IMAGE"
echo "$IMAGE"
