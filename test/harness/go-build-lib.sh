# Shared by the build scripts that make binaries from the Go module proxy (Kubernetes and etcd;
# with_progress also for the chart tools). The caller sets OUT (cache dir for this key) and LOG,
# and defines say() and fail().

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

# Runs a command (a go build or go install) in the background, its output to $LOG, and reports
# progress every 30 s, so a long compile never looks like a hang. Usage:
#   with_progress LABEL FAILED_STEP COMMAND...
with_progress() {
  local label="$1" step="$2"; shift 2
  ( "$@" ) >>"$LOG" 2>&1 &
  local pid=$! t0 first; t0=$(date +%s); first=$(wc -l <"$LOG")
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30 &
    wait $! || true
    kill -0 "$pid" 2>/dev/null || break
    say "building $label: $(tail -n +"$((first + 1))" "$LOG" | grep -c '^[a-z]' || true) packages compiled so far, $(( $(date +%s) - t0 ))s elapsed"
  done
  wait "$pid" || fail "$step"
}

# Builds one Go package of the module in `dir`. Peak memory goes to $OUT/build-stats.txt when
# /usr/bin/time exists.
build_with_progress() {
  local label="$1" dir="$2" out="$3" pkg="$4" ldflags="$5"
  local timer=()
  [[ -x /usr/bin/time ]] && timer=(/usr/bin/time -f "peak_rss_kib=%M elapsed_s=%e ($label)" -a -o "$OUT/build-stats.txt")
  with_progress "$label" "go build $label" \
    env -C "$dir" "${timer[@]}" go build -v -trimpath -ldflags "$ldflags" -o "$out" "$pkg"
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging
# paths. Makes a wrapper module in $1 that replaces each with the published v0.x release
# instead, and gets the given k8s.io/kubernetes/cmd packages into it.
resolve_kubernetes_module() {
  local dir="$1" version="$2"; shift 2
  local staging_version="v0.${version#v1.}" gomod staging m cmd
  rm -rf "$dir" && mkdir -p "$dir"
  # Every step checked by hand: called as `resolve_kubernetes_module ... || fail`, set -e is off.
  (
    cd "$dir" || exit 1
    go mod init kubebuild || exit 1
    gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f "$gomod" ]] || { echo "no go.mod downloaded for k8s.io/kubernetes@$version"; exit 1; }
    staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9./-]*\) => \./staging/.*#\1#p' "$gomod")
    [[ -n "$staging" ]] || { echo "found no staging replace lines in $gomod"; exit 1; }
    for m in $staging; do go mod edit -replace "$m=$m@$staging_version" || exit 1; done
    # Match upstream's runtime defaults for this release rather than the newer local Go's.
    go mod edit -godebug=default=go1.24 || exit 1
    for cmd in "$@"; do go get "k8s.io/kubernetes/cmd/$cmd@$version" || exit 1; done
  ) >>"$LOG" 2>&1
}

# The version stamp upstream's release build puts in every Kubernetes binary.
kubernetes_ldflags() {
  local version="$1" minor="${1#v1.}"; minor="${minor%%.*}"
  local V=k8s.io/component-base/version
  echo "-s -w -X $V.gitVersion=$version -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean -X $V.buildDate=1970-01-01T00:00:00Z"
}
