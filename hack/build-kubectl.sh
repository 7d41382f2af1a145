#!/usr/bin/env bash
# Builds kubectl from the Go module proxy, for machines where no package provides it, and caches
# it outside the repository beside the control plane. A cached build returns at once; a cold one
# takes several minutes on 2 cores. The binary is linked into $CACHE/bin, which the Makefile puts
# on PATH. Prints that directory on its last line of stdout.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.33.13}"
CACHE_ROOT="${FAILOVER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/failover-operator}"
OUT="$CACHE_ROOT/kubectl/$K8S_VERSION"
LOG="$OUT/build.log"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

say() { printf '[kubectl build] %s\n' "$*" >&2; }
mkdir -p "$OUT" "$CACHE_ROOT/bin"
exec 9>"$OUT/.lock"
flock 9
if [[ ! -x "$OUT/kubectl" ]]; then
  command -v go >/dev/null || { say "go is not installed (need Go >= 1.24)"; exit 1; }
  say "building kubectl $K8S_VERSION (log: $LOG)"
  src="$OUT/src"
  rm -rf "$src" && mkdir -p "$src"
  staging="v0.${K8S_VERSION#v1.}"
  # What k8s.io/kubernetes/cmd/kubectl does, in a module of its own: that one is refused by
  # `go install` (its staging modules are replace directives).
  cat >"$src/main.go" <<'GO'
package main

import (
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
GO
  (
    cd "$src"
    go mod init kubectlbuild
    go get "k8s.io/kubectl@$staging" "k8s.io/component-base@$staging" "k8s.io/client-go@$staging"
    go mod tidy
    version="-X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
    go build -trimpath -ldflags "-s -w $version" -o "$OUT/kubectl.tmp" .
  ) >"$LOG" 2>&1 || { say "FAILED; log: $LOG"; tail -n 20 "$LOG" >&2; exit 1; }
  mv "$OUT/kubectl.tmp" "$OUT/kubectl"
fi
ln -sf "$OUT/kubectl" "$CACHE_ROOT/bin/kubectl"
echo "$CACHE_ROOT/bin"
