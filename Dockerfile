# syntax=docker/dockerfile:1
# The xserver image: one image for every role (mgr, login, gateway, service nodes); the command
# picks the role, e.g. `docker run xserver mgr`. docs/deployment.md explains the settings.
ARG NODE_VERSION=20

# ---- build: all dependencies, TypeScript -> dist/ ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts (esbuild, buf) are only for tools the build below does not use.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
# The example services (lobby, match, echo) and the chat page of the demo cluster, compiled into
# dist/examples/ by the same build.
COPY examples ./examples
COPY scripts/build-examples.js ./scripts/build-examples.js
RUN npm run -s build

# ---- runtime: production dependencies and dist/ only ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini as PID 1: forwards SIGTERM to node (which then drains, see drainTimeoutMs) and reaps
# zombies, whether or not the container engine adds an init of its own.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY proto ./proto
# Admin HTTP (/livez, /readyz, /metrics) on every container, for probes and the HEALTHCHECK.
ENV XSERVER_ADMIN_HOST=0.0.0.0 \
    XSERVER_ADMIN_PORT=9090
# The node images' unprivileged user `node`, by number so that Kubernetes' runAsNonRoot can
# verify it is not root.
USER 1000:1000
# Intranet port (node.port / mgr.port), login.port, gateway.tcpPort, gateway.wsPort, adminPort,
# as set by the compose file and the Kubernetes manifests.
EXPOSE 7000 7080 7100 7101 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/livez').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/xserver.js"]
CMD ["--help"]
