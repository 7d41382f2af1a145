# The two commands: `make demo` and `make test`. Both set themselves up: npm packages (which
# bring Node.js 24 with them) and the cached build of the local Kubernetes control plane.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# node_modules/.bin first: `node` there is the Node.js 24 the project pins, not the machine's.
# Go's default place and the cache's bin last: a kubectl built from Go modules where no package
# provides one.
CACHE_DIR := $(or $(FAILOVER_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/failover-operator)
export PATH := $(CURDIR)/node_modules/.bin:$(PATH):/usr/local/go/bin:$(CACHE_DIR)/bin

NODE_STAMP := node_modules/.package-lock.json

.PHONY: help prerequisites demo-prerequisites deps control-plane generate lint typecheck test unit integration bench up down demo clean \
  chart-tools chart-check e2e image install-plugin plugin build node-binaries e2e-local cluster-up cluster-down chart-package

help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

prerequisites: ## Check (and install, where this user may) what `make test` needs from the machine, in seconds
	@bash hack/prerequisites.sh test

demo-prerequisites:
	@bash hack/prerequisites.sh demo

deps: prerequisites $(NODE_STAMP) control-plane node-binaries chart-tools ## Install npm packages, build the control plane, node binaries and chart tools (cached)

control-plane: ## Build kube-apiserver and etcd from the Go module proxy (cached outside the repo)
	@bash test/harness/build-control-plane.sh >/dev/null

node-binaries: control-plane ## Build kube-scheduler, kube-controller-manager, kubelet and kube-proxy from Go modules (cached)
	@bash test/harness/build-node.sh >/dev/null

generate: $(NODE_STAMP) ## Regenerate crds/ from the zod schemas in operator/src/api, and the chart's generated files
	node operator/src/api/generate-crds.ts crds
	node charts/generate.ts

lint: $(NODE_STAMP) ## Lint and check formatting (Biome)
	biome check --error-on-warnings .

typecheck: $(NODE_STAMP) ## Type-check everything (TypeScript strict)
	tsc -p tsconfig.json --noEmit

test: deps lint typecheck chart-check ## Lint, type-check, unit and integration tests against real parts
	@mkdir -p .local
	@rm -f .local/test-results.json
	@status=0; vitest run --reporter=default --reporter=json --outputFile.json=.local/test-results.json || status=$$?; \
	  node test/report-totals.ts .local/test-results.json || status=1; exit $$status

unit: $(NODE_STAMP) ## Unit tests only (no servers)
	vitest run --project unit

integration: deps ## Integration tests only
	vitest run --project integration

chart-tools: ## Build helm, kubeconform and promtool from the Go module proxy (cached outside the repo)
	@bash test/harness/build-chart-tools.sh >/dev/null

chart-check: $(NODE_STAMP) control-plane chart-tools ## helm lint + template of the chart, kubeconform on every manifest (offline schemas)
	node test/harness/check-chart.ts

e2e: $(NODE_STAMP) ## kind end-to-end suite: needs Docker (kind is built if missing); not part of make test
	bash test/e2e/run.sh

e2e-local: $(NODE_STAMP) control-plane node-binaries chart-tools ## The chart installed into a local single-node cluster (kubelet, containerd): part of make test
	@bash hack/prerequisites.sh cluster
	vitest run --project cluster

cluster-up: $(NODE_STAMP) control-plane node-binaries chart-tools ## Start a single-node cluster on this machine (root), with the operator image in it; .local/cluster/kubeconfig
	@bash hack/prerequisites.sh cluster
	node test/local-cluster/cluster.ts up

cluster-down: $(NODE_STAMP) ## Stop the local cluster and remove what it made (bridge, iptables rules, mounts)
	node test/local-cluster/cluster.ts down

chart-package: $(NODE_STAMP) chart-tools ## Package the chart for a chart repository or an OCI registry: dist/charts/failover-operator-<version>.tgz
	@mkdir -p dist/charts
	"$$(bash test/harness/build-chart-tools.sh 2>/dev/null | tail -n 1)/helm" package charts/failover-operator -d dist/charts

build: $(NODE_STAMP) ## Bundle the operator into one JavaScript module as the image runs it: dist/build/operator/src/main.js
	rm -rf dist/build
	node hack/build-operator.ts dist/build

image: $(NODE_STAMP) ## Build the operator's image with docker, podman or buildah (ENGINE=); the base is made locally where no registry answers
	@bash hack/image/build.sh >/dev/null

plugin: $(NODE_STAMP) ## Bundle the kubectl plugin into one file, dist/kubectl-failover (needs only Node.js >= 22), with a krew manifest
	node hack/bundle-plugin.ts

PLUGIN_DIR ?= $(HOME)/.local/bin
install-plugin: $(NODE_STAMP) ## Symlink bin/kubectl-failover into PLUGIN_DIR (default ~/.local/bin) for `kubectl failover`
	@mkdir -p "$(PLUGIN_DIR)"
	ln -sf "$(CURDIR)/bin/kubectl-failover" "$(PLUGIN_DIR)/kubectl-failover"
	ln -sf "$(CURDIR)/bin/kubectl_complete-failover" "$(PLUGIN_DIR)/kubectl_complete-failover"
	@case ":$$PATH:" in *":$(PLUGIN_DIR):"*) ;; *) echo "add $(PLUGIN_DIR) to PATH so kubectl finds the plugin";; esac
	@echo "installed: kubectl failover --help"

bench: $(NODE_STAMP) control-plane ## Benchmarks against real parts; prints the figures (~17 minutes, plus about an hour for bench/scale.ts's sizes)
	node bench/control-plane-start.ts
	node bench/reconcile-at-scale.ts
	node bench/scale.ts
	node bench/probe-cost.ts
	# As the image runs the operator (Dockerfile: MALLOC_ARENA_MAX, the young generation's size).
	MALLOC_ARENA_MAX=2 node --max-semi-space-size=8 bench/probe-floor.ts
	node bench/failover-timing.ts
	node bench/reprotect-timing.ts
	node bench/drill-timing.ts
	node bench/evidence.ts

up: demo-prerequisites $(NODE_STAMP) control-plane ## Start the two local regions in the background; writes .local/env.sh
	node test/local-env/up.ts

down: $(NODE_STAMP) ## Stop the local environment
	node test/local-env/down.ts

demo: demo-prerequisites $(NODE_STAMP) control-plane ## Two regions on this machine: an outage and an automatic promotion, the old region back as a standby, a failback, a drill out and back (RTO and RPO), and an isolated drill on a copy of the standby
	node test/local-env/demo.ts

clean: down ## Stop everything and remove local state
	rm -rf .local
