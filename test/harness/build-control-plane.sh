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

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

say() { printf '[control-plane build] %s\n' "$*" >&2; }
fail() { say "FAILED at step: $1"; say "log: $LOG"; tail -n 30 "$LOG" >&2 || true; exit 1; }

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

# Builds one Go package in the background and reports progress every 30 s, so a long
# compile never looks like a hang. Peak memory goes to the log when /usr/bin/time exists.
build_with_progress() {
  local label="$1" dir="$2" out="$3" pkg="$4" ldflags="$5"
  local timer=()
  [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f "peak_rss_kib=%M elapsed_s=%e ($label)" -a -o "$OUT/build-stats.txt")
  ( cd "$dir" && "${timer[@]}" go build -v -trimpath -ldflags "$ldflags" -o "$out" "$pkg" ) >>"$LOG" 2>&1 &
  local pid=$! t0 first; t0=$(date +%s); first=$(wc -l <"$LOG")
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30 &
    wait $! || true
    kill -0 "$pid" 2>/dev/null || break
    say "building $label: $(tail -n +"$((first + 1))" "$LOG" | grep -c '^[a-z]' || true) packages compiled so far, $(( $(date +%s) - t0 ))s elapsed"
  done
  wait "$pid" || fail "go build $label"
}

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

# --- kube-apiserver: k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
# with ./staging paths. A wrapper module replaces each with the published v0.x release instead.
say "step 3/4: resolving kube-apiserver $K8S_VERSION modules"
K8S_MOD="$OUT/src/kube-apiserver"
rm -rf "$K8S_MOD" && mkdir -p "$K8S_MOD"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
(
  cd "$K8S_MOD"
  go mod init apiserverbuild
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [[ -f "$gomod" ]] || { echo "no go.mod downloaded for k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9./-]*\) => \./staging/.*#\1#p' "$gomod")
  [[ -n "$staging" ]] || { echo "found no staging replace lines in $gomod"; exit 1; }
  for m in $staging; do go mod edit -replace "$m=$m@$STAGING_VERSION"; done
  # Match upstream's runtime defaults for this release rather than the newer local Go's.
  go mod edit -godebug=default=go1.24
  go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION"
) >>"$LOG" 2>&1 || fail "resolve kube-apiserver modules"

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
V=k8s.io/component-base/version
LDFLAGS="-s -w -X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
say "step 4/4: building kube-apiserver (the long one: expect 10-25 minutes cold)"
build_with_progress kube-apiserver "$K8S_MOD" "$OUT/bin/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver "$LDFLAGS"
mv "$OUT/bin/kube-apiserver.tmp" "$OUT/bin/kube-apiserver"

# Sources are only needed for the build; the Go module cache keeps them anyway.
rm -rf "$OUT/src"
say "done in $(( $(date +%s) - start ))s: $OUT/bin"
[[ -f "$OUT/build-stats.txt" ]] && sed 's/^/[control-plane build] /' "$OUT/build-stats.txt" >&2
echo "$OUT/bin"
