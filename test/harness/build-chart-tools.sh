#!/usr/bin/env bash
# Builds helm (v3), kubeconform and promtool (Prometheus's rule checker and rule unit tests) from
# the Go module proxy and caches them outside the repository, keyed by version, like
# build-control-plane.sh. A cached build returns at once; a cold one takes a
# few minutes on 2 cores.
#
# Prints the directory holding the binaries on its last line of stdout.
# Progress goes to stderr; the build log is $CACHE/chart-tools/<key>/build.log.
set -euo pipefail

CACHE_ROOT="${FAILOVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/failover-operator}"
export PATH="$PATH:/usr/local/go/bin"

say() { printf '[chart tools build] %s\n' "$*" >&2; }
command -v go >/dev/null || { say "go is not installed (need Go >= 1.24 on PATH or in /usr/local/go/bin)"; exit 1; }

# The newest helm 3 and kubeconform this Go can build (GOTOOLCHAIN=local: no toolchain download).
# Their go.mod files ask: helm 3.22 and kubeconform 0.8 Go 1.26, helm 3.20 Go 1.25, helm 3.19 and
# kubeconform 0.7 Go 1.24. HELM_VERSION and KUBECONFORM_VERSION override the choice.
go_minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
# Prometheus's module (v0.316 is Prometheus 3.x) asks Go 1.26.7; v0.307 asks 1.24.
if (( ${go_minor:-0} >= 26 )); then default_helm=v3.22.0 default_kubeconform=v0.8.0 default_prometheus=v0.316.0
elif (( ${go_minor:-0} == 25 )); then default_helm=v3.20.2 default_kubeconform=v0.7.0 default_prometheus=v0.307.3
elif (( ${go_minor:-0} == 24 )); then default_helm=v3.19.5 default_kubeconform=v0.7.0 default_prometheus=v0.307.3
else say "Go $(go env GOVERSION) is too old: helm and kubeconform need Go >= 1.24"; exit 1
fi
HELM_VERSION="${HELM_VERSION:-$default_helm}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-$default_kubeconform}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-$default_prometheus}"

KEY="helm-${HELM_VERSION}_kubeconform-${KUBECONFORM_VERSION}_$(go env GOOS)-$(go env GOARCH)"
OUT="$CACHE_ROOT/chart-tools/$KEY"
LOG="$OUT/build.log"
fail() { say "FAILED at step: $1"; say "log: $LOG"; tail -n 30 "$LOG" >&2 || true; exit 1; }
# shellcheck source=test/harness/go-build-lib.sh
source "$(dirname "$0")/go-build-lib.sh"

mkdir -p "$OUT/bin"
# One build at a time per cache key: CI and a test run may race.
exec 9>"$OUT/.lock"
flock 9

# promtool came later than the other two: a cache holding them gets it added, keyed by its version.
PROMTOOL="promtool-$PROMETHEUS_VERSION"
if [[ -x "$OUT/bin/helm" && -x "$OUT/bin/kubeconform" && -x "$OUT/bin/$PROMTOOL" ]]; then
  say "cached: $OUT/bin"
  echo "$OUT/bin"
  exit 0
fi

# `go install pkg@version` builds from the module's own go.mod; -mod flags do not apply to it
# (this replaces the GOFLAGS go-build-lib.sh sets for the Kubernetes builds).
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOBIN="$OUT/bin.tmp"
: >"$LOG"
rm -rf "$GOBIN"
start=$(date +%s)

# helm reads its own version and the Kubernetes version it assumes (for .Capabilities and lint)
# from variables its release Makefile sets; set them so `helm version` and lint are honest.
if [[ -x "$OUT/bin/helm" && -x "$OUT/bin/kubeconform" ]]; then
  say "helm and kubeconform cached in $OUT/bin"
else
say "step 1/3: helm $HELM_VERSION (resolving modules, then compiling; expect 2-10 minutes cold)"
# As helm's Makefile does: the Kubernetes version lint's deprecation rules and the default
# .Capabilities.KubeVersion assume is client-go's v0.N.x → 1.N; left unset, helm assumes 1.20.
helm_json=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" 2>>"$LOG") || true
printf '%s\n' "$helm_json" >>"$LOG"
helm_gomod=$(printf '%s\n' "$helm_json" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[[ -f "$helm_gomod" ]] || fail "resolve helm $HELM_VERSION (is it a helm 3 release?)"
k8s_minor=$(sed -n 's#^[[:space:]]*k8s\.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$helm_gomod" | head -n 1)
[[ -n "$k8s_minor" ]] || fail "read the client-go version from $helm_gomod"
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  HELM_LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
with_progress helm "go install helm" go install -v -trimpath -ldflags "$HELM_LDFLAGS" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"

say "step 2/3: kubeconform $KUBECONFORM_VERSION"
with_progress kubeconform "go install kubeconform" go install -v -trimpath -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"

for b in helm kubeconform; do
  [[ -x "$GOBIN/$b" ]] || fail "no $b binary in $GOBIN"
  mv "$GOBIN/$b" "$OUT/bin/$b"
done
fi

say "step 3/3: promtool $PROMETHEUS_VERSION (a large module: expect 5-10 minutes cold)"
with_progress promtool "go install promtool" go install -v -trimpath -ldflags "-s -w" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
[[ -x "$GOBIN/promtool" ]] || fail "no promtool binary in $GOBIN"
mv "$GOBIN/promtool" "$OUT/bin/$PROMTOOL"
ln -sfn "$PROMTOOL" "$OUT/bin/promtool"
rm -rf "$GOBIN"
say "done in $(( $(date +%s) - start ))s: $OUT/bin ($("$OUT/bin/helm" version --short 2>/dev/null || echo 'helm version unknown'))"
echo "$OUT/bin"
