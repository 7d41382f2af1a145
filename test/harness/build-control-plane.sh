#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy and caches them outside the repository,
# keyed by version. A cached build returns at once; a cold one takes 10-25 minutes on 2 cores.
#
# Prints the directory holding the binaries on its last line of stdout.
# Progress and logs go to stderr and to $CACHE/<key>/build.log.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.33.13}"
ETCD_VERSION="${ETCD_VERSION:-v3.5.21}"
CACHE_ROOT="${FAILOVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/failover-operator}"
KEY="kube-apiserver-${K8S_VERSION}_etcd-${ETCD_VERSION}_$(go env GOOS)-$(go env GOARCH)"
OUT="$CACHE_ROOT/control-plane/$KEY"
LOG="$OUT/build.log"

say() { printf '[control-plane build] %s\n' "$*" >&2; }
fail() { say "FAILED at step: $1"; say "log: $LOG"; tail -n 30 "$LOG" >&2 || true; exit 1; }
# shellcheck source=test/harness/go-build-lib.sh
source "$(dirname "$0")/go-build-lib.sh"

mkdir -p "$OUT"
# One build at a time per cache key: CI and a developer's `make up` may race.
exec 9>"$OUT/.lock"
flock 9

if [[ -x "$OUT/bin/kube-apiserver" && -x "$OUT/bin/etcd" ]]; then
  say "cached: $OUT/bin"
  echo "$OUT/bin"
  exit 0
fi

command -v go >/dev/null || { say "go is not installed (need Go >= 1.24)"; exit 1; }
: >"$LOG"
start=$(date +%s)

# --- etcd 3.5: its server module is refused by `go install` (replace directives), so build it
# from a throw-away wrapper module instead.
say "step 1/4: resolving etcd $ETCD_VERSION"
ETCD_MOD="$OUT/src/etcd"
rm -rf "$ETCD_MOD" && mkdir -p "$ETCD_MOD"
( cd "$ETCD_MOD" && go mod init etcdbuild && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" ) >>"$LOG" 2>&1 \
  || fail "resolve etcd modules"
say "step 2/4: building etcd"
build_with_progress etcd "$ETCD_MOD" "$OUT/bin/etcd.tmp" go.etcd.io/etcd/server/v3 "-s -w"
mv "$OUT/bin/etcd.tmp" "$OUT/bin/etcd"

say "step 3/4: resolving kube-apiserver $K8S_VERSION modules"
K8S_MOD="$OUT/src/kube-apiserver"
resolve_kubernetes_module "$K8S_MOD" "$K8S_VERSION" kube-apiserver || fail "resolve kube-apiserver modules"

LDFLAGS=$(kubernetes_ldflags "$K8S_VERSION")
say "step 4/4: building kube-apiserver (the long one: expect 10-25 minutes cold)"
build_with_progress kube-apiserver "$K8S_MOD" "$OUT/bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver "$LDFLAGS"
mv "$OUT/bin/kube-apiserver.tmp" "$OUT/bin/kube-apiserver"

# Sources are only needed for the build; the Go module cache keeps them anyway.
rm -rf "$OUT/src"
say "done in $(( $(date +%s) - start ))s: $OUT/bin"
[[ -f "$OUT/build-stats.txt" ]] && sed 's/^/[control-plane build] /' "$OUT/build-stats.txt" >&2
echo "$OUT/bin"
