# The operator's image. The observer is the same image with --mode=observer.
#
# Node.js 24 runs the TypeScript sources directly (type stripping; the code uses only erasable
# syntax), so there is no compile step and no dist/ to drift from what the tests ran: the image
# runs exactly the files `make test` tested. Start-up costs a few hundred milliseconds more than
# compiled JavaScript would, once per pod.
#
# Build where a Docker engine runs:  docker build -t failover-operator:dev .   (or: make image)

# Match the Node.js version package.json pins (the `node` dev dependency the tests run on).
ARG NODE_VERSION=24.21.0

# --- dependencies: production packages only, without install scripts (none are needed at runtime)
FROM node:${NODE_VERSION}-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: the slim Node.js image, the packages and the operator's sources, nothing else
FROM node:${NODE_VERSION}-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY operator/src ./operator/src
# (.dockerignore leaves the tests out.) npm and corepack are not needed at runtime.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
# The `node` user of the base image (uid 1000), numerically so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# V8 grows its young generation to the maximum (semi-spaces of up to 32 MiB, held three times
# over) under the operator's steady stream of short-lived objects: parsed objects, status
# patches, probe rows. Semi-spaces of 8 MiB mean more minor GCs, each cheaper, and about half the
# peak RSS with hundreds of policies (figures in docs/architecture.md). The old space is left to
# V8: --max-old-space-size below the live heap's needs turns memory pressure into GC thrash long
# before the pod's limit. The tests start the operator with these same flags (operator-process.ts).
ENTRYPOINT ["node", "--max-semi-space-size=8", "operator/src/main.ts"]
