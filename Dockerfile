# One image for every Switchboard process: the gateway, the worker, the selector and the fleet
# simulator, as compiled JavaScript. The command chooses which (docker-compose.yml sets one per
# service); the default runs a gateway.
#
#   docker build -t switchboard .
#   docker run --rm -e REDIS_URL=… -e SB_JOIN_TOKEN=… -e SB_NODE_TOKEN_SECRET=… -e SB_API_KEY=… switchboard
#   (a worker: append  node --import ./dist/shared/telemetry-preload.js dist/services/worker/main.js)

# ---- build: all dependencies, tsc to dist/, then drop the dev dependencies ------------------
FROM node:22-slim AS build
WORKDIR /app

COPY package.json package-lock.json ./
# npm ci refuses a lock file made against a registry mirror that holds only one platform's
# optional packages (see .ci/run); npm install then installs exactly the locked versions.
RUN npm ci --no-audit --no-fund || npm install --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY shared ./shared
COPY services ./services
COPY agent ./agent
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: compiled JavaScript, production dependencies, the Lua scripts ------------------
FROM node:22-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app

# package.json carries "type": "module", which the compiled ES modules need.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The Lua loader reads new URL('../lua/', import.meta.url) from dist/shared/lua-scripts.js,
# that is /app/dist/lua/ (in the source tree the same expression gives <repo>/lua/).
COPY lua ./dist/lua

# Files stay owned by root (read-only to the process); the services run as the image's
# unprivileged "node" user (uid 1000).
USER node

# gateway 8080 (HTTP + WebSocket), selector 8081, worker metrics 8082
EXPOSE 8080 8081 8082
# The preload starts OpenTelemetry before the service loads when OTEL_EXPORTER_OTLP_ENDPOINT is
# set (shared/telemetry.ts); without it, it does nothing.
CMD ["node", "--import", "./dist/shared/telemetry-preload.js", "dist/services/gateway/main.js"]
