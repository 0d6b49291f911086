# sidecache container: multi-stage, production dependencies only, non-root, health-checked, and it
# writes nothing to disk (runs with a read-only root filesystem). Node 24 is the current LTS.
# docker build -t sidecache . && docker run --read-only -v $PWD/sidecache.yaml:/etc/sidecache/sidecache.yaml sidecache
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts
COPY src ./src
RUN npx tsc -p tsconfig.json

FROM node:24-bookworm-slim
ENV NODE_ENV=production SIDECACHE_CONFIG=/etc/sidecache/sidecache.yaml
WORKDIR /app
COPY package.json package-lock.json ./
# The demo's embedded PostgreSQL (an optional dependency) is not needed in production images.
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY config ./config
COPY config/container.yaml /etc/sidecache/sidecache.yaml
# Numeric, so that a kubelet enforcing runAsNonRoot can verify it (the node image's `node` is 1000:1000).
USER 1000:1000
EXPOSE 8080 6432 9090
# /healthz answers 200 while the process is up (admin listen must be reachable inside the container).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM: /readyz turns 503, accepting stops, work in flight drains for shutdownGrace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["start"]
