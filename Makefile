# The two commands: `make demo` and `make test`. Both set themselves up: npm packages (which
# bring Node.js 24 with them) and the cached build of the local Kubernetes control plane.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# node_modules/.bin first: `node` there is the Node.js 24 the project pins, not the machine's.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

NODE_STAMP := node_modules/.package-lock.json

.PHONY: help deps control-plane generate lint typecheck test unit integration bench up down demo clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NODE_STAMP) control-plane ## Install npm packages and build the control plane (cached)

control-plane: ## Build kube-apiserver and etcd from the Go module proxy (cached outside the repo)
	@bash test/harness/build-control-plane.sh >/dev/null

generate: $(NODE_STAMP) ## Regenerate crds/ from the zod schemas in operator/src/api
	node operator/src/api/generate-crds.ts crds

lint: $(NODE_STAMP) ## Lint and check formatting (Biome)
	biome check --error-on-warnings .

typecheck: $(NODE_STAMP) ## Type-check everything (TypeScript strict)
	tsc -p tsconfig.json --noEmit

test: deps lint typecheck ## Lint, type-check, unit and integration tests against real parts
	@mkdir -p .local
	@rm -f .local/test-results.json
	@status=0; vitest run --reporter=default --reporter=json --outputFile.json=.local/test-results.json || status=$$?; \
	  node test/report-totals.ts .local/test-results.json || status=1; exit $$status

unit: $(NODE_STAMP) ## Unit tests only (no servers)
	vitest run --project unit

integration: deps ## Integration tests only
	vitest run --project integration

bench: deps ## Benchmarks against real parts; prints the figures (takes several minutes)
	node bench/reconcile-at-scale.ts

up: deps ## Start the local environment in the background; writes .local/env.sh
	node test/local-env/up.ts

down: $(NODE_STAMP) ## Stop the local environment
	node test/local-env/down.ts

demo: deps ## Bring up the local environment, show it working, tear it down
	node test/local-env/demo.ts

clean: down ## Stop everything and remove local state
	rm -rf .local
