#!/usr/bin/env bash
# Builds what turns the test control plane into a single-node cluster that runs pods:
# kube-controller-manager, kube-scheduler, kubelet and kube-proxy, from the Go module proxy, cached outside
# the repository and keyed by version. A cached build returns at once; a cold one takes about
# 10 minutes on 2 cores after build-control-plane.sh (they share Go's build cache).
#
# Prints the directory holding the binaries on its last line of stdout.
# Progress goes to stderr; logs to $CACHE/<key>/build.log.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.33.13}"
CACHE_ROOT="${FAILOVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/failover-operator}"
KEY="kube-node-${K8S_VERSION}_$(go env GOOS)-$(go env GOARCH)"
OUT="$CACHE_ROOT/node/$KEY"
LOG="$OUT/build.log"
COMPONENTS=(kube-scheduler kube-controller-manager kubelet kube-proxy)

say() { printf '[node build] %s\n' "$*" >&2; }
fail() { say "FAILED at step: $1"; say "log: $LOG"; tail -n 30 "$LOG" >&2 || true; exit 1; }
# shellcheck source=test/harness/go-build-lib.sh
source "$(dirname "$0")/go-build-lib.sh"

mkdir -p "$OUT/bin"
exec 9>"$OUT/.lock"
flock 9

missing=()
for c in "${COMPONENTS[@]}"; do [[ -x "$OUT/bin/$c" ]] || missing+=("$c"); done
if ((${#missing[@]} == 0)); then
  say "cached: $OUT/bin"
  echo "$OUT/bin"
  exit 0
fi

command -v go >/dev/null || { say "go is not installed (need Go >= 1.24)"; exit 1; }
: >"$LOG"
start=$(date +%s)
say "step 1/$(( ${#missing[@]} + 1 )): resolving Kubernetes $K8S_VERSION modules"
resolve_kubernetes_module "$OUT/src" "$K8S_VERSION" "${missing[@]}" || fail "resolve Kubernetes modules"
step=1
for c in "${missing[@]}"; do
  step=$((step + 1))
  say "step $step/$(( ${#missing[@]} + 1 )): building $c"
  build_with_progress "$c" "$OUT/src" "$OUT/bin/$c.tmp" "k8s.io/kubernetes/cmd/$c" "$(kubernetes_ldflags "$K8S_VERSION")"
  mv "$OUT/bin/$c.tmp" "$OUT/bin/$c"
done
rm -rf "$OUT/src"
say "done in $(( $(date +%s) - start ))s: $OUT/bin"
[[ -f "$OUT/build-stats.txt" ]] && sed 's/^/[node build] /' "$OUT/build-stats.txt" >&2
echo "$OUT/bin"
