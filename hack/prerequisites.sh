#!/usr/bin/env bash
# What `make demo` and `make test` need from the machine, checked in seconds before any long
# build: Debian packages are installed when missing (as root, or through sudo without a
# password); anything else stops here with the exact command to run. `.ci/run` calls it too.
#
#   hack/prerequisites.sh demo   # the local environment: PostgreSQL, BIND, Go, kubectl...
#   hack/prerequisites.sh test   # the same, plus moto_server (the AWS API emulator), chromium, and
#                                # what the local cluster needs (containerd, runc, buildah, podman,
#                                # CNI plugins, debootstrap for the image's base)
#   hack/prerequisites.sh cluster # only what `make cluster-up` and `make image` add to demo
#
# kubectl, when no package provides it, is built from the Go module proxy into the cache
# (hack/build-kubectl.sh), like the control plane; the Makefile puts that directory on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

purpose="${1:-test}"
case "$purpose" in demo | test | cluster) ;; *) echo "usage: $0 demo|test|cluster" >&2; exit 2 ;; esac

# Go where its installer puts it, even when the user's PATH does not have it yet (the Makefile
# appends it too).
[[ -x /usr/local/go/bin/go ]] && export PATH="$PATH:/usr/local/go/bin"

packages=()   # Debian packages to install
problems=()   # what cannot be installed from here, with how to fix it

has() { command -v "$1" >/dev/null 2>&1; }
need() { # need <command or absolute path> <package>
  if [[ "$1" == /* ]]; then [[ -x "$1" ]] && return 0; else has "$1" && return 0; fi
  packages+=("$2")
}

need make make
need git git
need npm npm                      # brings the project's Node.js 24 (package.json's "node")
need /usr/bin/time time           # peak memory of builds and benchmarks
need setpriv util-linux           # test servers die with the test run (parent-death signal)
need ip iproute2                  # network namespaces: a region that drops packets
need openssl openssl              # test certificates
need /usr/sbin/named bind9        # a real DNS server with TSIG (the harness runs /usr/sbin/named)
need nsupdate bind9-dnsutils
need dig bind9-dnsutils
[[ -e /etc/ssl/certs/ca-certificates.crt ]] || packages+=(ca-certificates)
# PostgreSQL (15 is what the tests run): initdb and pg_ctl, on PATH or where Debian puts them.
if ! has initdb && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  packages+=(postgresql)
fi

if has go; then
  gov=$( (go env GOVERSION 2>/dev/null || true) | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
  if [[ -z "$gov" || "$gov" -lt 24 ]]; then
    problems+=("Go $(go env GOVERSION 2>/dev/null || echo '?') is too old: the control plane needs Go >= 1.24 (https://go.dev/dl, then put /usr/local/go/bin on PATH)")
  fi
else
  problems+=("go is not installed: the control plane (kube-apiserver, etcd) is built from Go modules; install Go >= 1.24 (https://go.dev/dl, then put /usr/local/go/bin on PATH)")
fi

# The chart's pods run in a single-node cluster (test/harness/local-cluster.ts): containerd and
# runc run them, the CNI plugins wire them to a bridge, kube-proxy programs iptables; the image is
# built with podman or buildah against a base made by debootstrap; the pause image is built by gcc.
if [[ "$purpose" == test || "$purpose" == cluster ]]; then
  need containerd containerd
  need runc runc
  need buildah buildah
  need podman podman
  need debootstrap debootstrap
  need iptables iptables
  need gcc gcc
  [[ -e /usr/include/stdio.h ]] || packages+=(libc6-dev)
  [[ -x /usr/lib/cni/bridge ]] || packages+=(containernetworking-plugins)
fi

# The status page is tested in a real headless browser (playwright-core drives Debian's chromium).
[[ "$purpose" == test ]] && { has chromium || [[ -x "${CHROMIUM_PATH:-/nonexistent}" ]] || packages+=(chromium); }

if [[ "$purpose" == test ]] && ! has moto_server; then
  problems+=("moto_server is not installed: the AWS tests run against it; install it with pip: python3 -m pip install 'moto[server]>=5' (it is not packaged by Debian)")
fi

# Debian packages: installed at once where this user may, else the command to run.
if ((${#packages[@]})); then
  mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
  install=(apt-get install -y -qq --no-install-recommends "${packages[@]}")
  runner=()
  if [[ $EUID -eq 0 ]]; then may=1
  elif has sudo && sudo -n true 2>/dev/null; then may=1; runner=(sudo)
  else may=0
  fi
  if ((may)); then
    echo "[prerequisites] installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    ${runner[@]+"${runner[@]}"} apt-get update -qq
    ${runner[@]+"${runner[@]}"} "${install[@]}" >/dev/null
  else
    problems+=("missing Debian packages ${packages[*]}: run  sudo apt-get update && sudo ${install[*]}")
  fi
fi

# kubectl: the plugin tests and the README's walkthrough use it; built when no package has it.
if ! has kubectl && ((${#problems[@]} == 0)); then
  echo "[prerequisites] kubectl not found: building it from Go modules (cached)" >&2
  bash hack/build-kubectl.sh >/dev/null
fi

if ((${#problems[@]})); then
  echo "[prerequisites] this machine lacks what make $purpose needs:" >&2
  for p in "${problems[@]}"; do echo "  - $p" >&2; done
  exit 1
fi
echo "[prerequisites] ok for make $purpose" >&2
