# syntax=docker/dockerfile:1

# Node 24 LTS. Alpine keeps the image small; every dependency is pure JS or WASM
# (pg, PGlite), so musl needs no native builds.
ARG NODE_IMAGE=node:24-alpine

# --- build: full install, compile, then drop dev dependencies -----------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first so the dependency layer is cached until they change.
COPY package.json package-lock.json ./
# No install scripts: the only ones are dev tooling (@swc/core, @parcel/watcher)
# and an analytics ping (@scarf/scarf); none is needed to build or run.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: compiled output + production dependencies, as `node` -------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# Code stays root-owned (read-only for the app). Only the default embedded-database
# folder (PGLITE_DATA_DIR=./data/pglite, used when DATABASE_URL is unset) and the local
# issuer's key folder (AUTH_KEYS_DIR=./data/auth) are writable;
# mount a volume at /app/data to keep that data.
RUN mkdir -p /app/data/auth && chown -R node:node /app/data
# package.json carries "type": "module", which dist/*.js needs.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# Liveness only (/health never touches the database); Node 24 has a global fetch.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node as PID 1 is fine here: the app installs its own SIGTERM/SIGINT handlers.
CMD ["node", "dist/main.js"]
