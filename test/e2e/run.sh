#!/usr/bin/env bash
# `make e2e`: the kind end-to-end suite. It needs a running Docker engine, kind and kubectl, which
# this script checks first. Without them it explains what is missing and exits 3 ("cannot run
# here"), distinct from 1 ("ran and failed"), so CI can tell a skipped suite from a red one.
#
# Environment: E2E_KEEP_CLUSTER=1 keeps the cluster after the run; E2E_REUSE_CLUSTER=1 reuses
# one from an earlier run; E2E_IMAGE=name:tag uses an image you built instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/node_modules/.bin:$PATH:/usr/local/go/bin"

KIND_VERSION="${KIND_VERSION:-v0.33.0}"
CACHE_ROOT="${FAILOVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/failover-operator}"
say() { printf '[e2e] %s\n' "$*" >&2; }
cannot_run() {
  say "cannot run the kind end-to-end suite here: $1"
  say "It needs a running Docker engine, kind and kubectl. Where Docker runs: make e2e"
  say "(see the README, section End-to-end tests). Exit code 3 means: not run, not failed."
  exit 3
}

command -v docker >/dev/null || cannot_run "docker is not installed"
docker_err=$(docker info 2>&1 >/dev/null) || cannot_run "the Docker engine does not answer (docker info: ${docker_err##*$'\n'})"
command -v kubectl >/dev/null || cannot_run "kubectl is not installed"

if ! command -v kind >/dev/null; then
  # kind is a Go program: build it from the Go module proxy once, like the control plane.
  kind_dir="$CACHE_ROOT/kind/$KIND_VERSION"
  if [[ ! -x "$kind_dir/kind" ]]; then
    command -v go >/dev/null || cannot_run "kind is not installed, and there is no Go to build it with"
    say "kind is not installed: building kind $KIND_VERSION from the Go module proxy into $kind_dir"
    GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$kind_dir" go install "sigs.k8s.io/kind@$KIND_VERSION" \
      || cannot_run "building kind failed"
  fi
  export PATH="$kind_dir:$PATH"
fi
say "docker: $(docker version --format '{{.Server.Version}}'), $(kind version), kubectl $(kubectl version --client -o json | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p' | head -n 1)"
bash test/harness/build-chart-tools.sh >/dev/null

exec vitest run --config test/e2e/vitest.config.ts
