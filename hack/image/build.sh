#!/usr/bin/env bash
# `make image`: builds the operator's image with docker, podman or buildah, whichever runs here
# (ENGINE= to choose). The Dockerfile pins its base by digest; where that cannot be pulled (no
# registry), the base is made locally by make-base.sh and passed as BASE_IMAGE.
#
# Env: IMAGE (default failover-operator:dev), ENGINE, LOCAL_BASE=1 to skip trying the registry.
# Prints the image name on its last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE="${IMAGE:-failover-operator:dev}"
say() { printf '[image] %s\n' "$*" >&2; }

if [[ -z "${ENGINE:-}" ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then ENGINE=docker
  elif command -v podman >/dev/null; then ENGINE=podman
  elif command -v buildah >/dev/null; then ENGINE=buildah
  else say "no container engine: install docker, or podman/buildah (apt-get install podman buildah)"; exit 3; fi
fi

pinned=$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)
pinned="${pinned//\$\{NODE_VERSION\}/$(sed -n 's/^ARG NODE_VERSION=//p' Dockerfile)}"
args=(--build-arg "VERSION=$(node -p 'require("./package.json").version' 2>/dev/null || echo dev)"
      --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
opts=()
if [[ "$ENGINE" != docker ]]; then
  # What runc needs on hosts without CAP_SYS_RESOURCE, and the machine's CA bundle for npm when
  # the machine trusts an extra CA (a TLS-intercepting proxy): mounted for RUN steps only.
  # The host's network for RUN steps (npm ci): no bridge or firewall rules of podman's own left
  # behind, and no NAT on the way.
  opts+=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --network host)
  if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -f "$NODE_EXTRA_CA_CERTS" ]]; then
    opts+=(--volume "$NODE_EXTRA_CA_CERTS:/etc/failover-build-ca.crt:ro")
    args+=(--build-arg NODE_EXTRA_CA_CERTS=/etc/failover-build-ca.crt)
  fi
  have() { "$ENGINE" image exists "$1" 2>/dev/null || buildah inspect --type image "$1" >/dev/null 2>&1; }
  if [[ "${LOCAL_BASE:-}" != 1 ]] && (have "$pinned" || timeout 120 "$ENGINE" pull -q "$pinned" >/dev/null 2>&1); then
    say "base: $pinned"
  else
    base=$(bash hack/image/make-base.sh "$ENGINE" | tail -n 1)
    say "base: $base (made locally; the registry's $pinned is not reachable)"
    args+=(--build-arg "BASE_IMAGE=$base")
    opts+=(--pull=never)
  fi
fi

start=$(date +%s)
case "$ENGINE" in
  docker) docker build "${args[@]}" -t "$IMAGE" . >&2 ;;
  podman) podman build "${opts[@]}" "${args[@]}" -t "$IMAGE" . >&2 ;;
  buildah) buildah bud "${opts[@]}" "${args[@]}" -t "$IMAGE" . >&2 ;;
  *) say "unknown ENGINE=$ENGINE (docker, podman or buildah)"; exit 3 ;;
esac
say "built $IMAGE with $ENGINE in $(( $(date +%s) - start ))s"
echo "$IMAGE"
