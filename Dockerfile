# The operator's image. The observer is the same image with --mode=observer.
#
# The TypeScript sources `make test` runs are bundled into one JavaScript module in a build stage
# (hack/build-operator.ts: rolldown, types stripped, only the code main reaches, names kept), so the
# process loads neither Node's type stripper nor ~480 modules one by one: ~6 MiB less RSS and
# ~0.25 s less CPU at start than one compiled module per file (figures in docs/architecture.md).
# test/integration/compiled-operator.test.ts runs that output.
#
# Build:  make image  (docker, podman or buildah, whichever this machine has), or by hand:
#   docker build -t failover-operator:dev .
# With podman or buildah and no registry, `make image` makes the base locally
# (hack/image/make-base.sh) and passes BASE_IMAGE=node:<version>-slim, since a locally made image
# cannot have this digest.

# Match the Node.js version package.json pins (the `node` dev dependency the tests run on).
ARG NODE_VERSION=24.21.0
# The official slim image of that version, pinned by digest (the multi-platform index).
ARG BASE_IMAGE=docker.io/library/node:${NODE_VERSION}-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6

# --- dependencies: production packages only, without install scripts (none are needed at runtime)
FROM ${BASE_IMAGE} AS deps
# Behind a TLS-intercepting proxy, the proxy's CA bundle (mounted by the build): npm reads it.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- build: the bundler beside the build script, it and each of its dependencies at the version
# and integrity package-lock.json pins (hack/image/bundler-lock.ts cuts them out of the lock, so
# `npm ci` installs 4 packages instead of every dev dependency); the production packages it
# bundles; the sources
FROM ${BASE_IMAGE} AS build
ARG NODE_EXTRA_CA_CERTS
WORKDIR /tools
COPY package-lock.json hack/image/bundler-lock.ts /app/
RUN node /app/bundler-lock.ts /app/package-lock.json /tools \
 && npm ci --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY hack/build-operator.ts ./
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY operator/src ./operator/src
RUN node /tools/build-operator.ts /app/dist/build /app

# --- runtime: the slim Node.js image, the packages and the operator's JavaScript, nothing else
FROM ${BASE_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="failover-operator" \
      org.opencontainers.image.description="Kubernetes operator for regional PostgreSQL failover" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
ENV NODE_ENV=production
# glibc gives each thread that allocates its own malloc arena (up to 8 per core): V8's GC helpers,
# libuv's pool and TLS each left a partly used one. Two arenas: with 2,000 policies / 4,000 clusters
# (bench/reconcile-at-scale.ts) peak RSS 235-245 -> 216-228 MiB, a restart's 222-225 -> 202-215 MiB,
# the same CPU. The tests run the operator with it too (operator-process.ts reads it here).
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist/build/operator/src ./operator/src
# (.dockerignore leaves the tests out.) npm and corepack are not needed at runtime.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
# The `node` user of the base image (uid 1000), numerically so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# V8 grows its young generation to the maximum (semi-spaces of up to 32 MiB, held three times
# over) under the operator's steady stream of short-lived objects: parsed objects, status
# patches, probe rows. Semi-spaces of 8 MiB mean more minor GCs, each cheaper, and about half the
# peak RSS with hundreds of policies (figures in docs/architecture.md). What survives them (calls
# in flight) is garbage soon after, and V8 lets the old space grow to up to 4 times the live heap
# before it collects: 2,000 policies live in ~60-120 MiB but held 344 MiB of heap.
# --heap-growing-percent=50 collected at 1.5 times: peak RSS 514 -> 313 MiB, the same CPU; 30
# (1.3 times), once the probes allocated less, took 2,000 policies' restarts from 192-203 to
# 188-190 MiB for ~1 s more CPU each, idle CPU unchanged. No --max-old-space-size: a cap below
# what the live heap needs turns pressure into GC thrash long before the pod's limit. The tests
# start the operator with these same flags (operator-process.ts).
ENTRYPOINT ["node", "--max-semi-space-size=8", "--heap-growing-percent=30", "operator/src/main.js"]
