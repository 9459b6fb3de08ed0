# gen-gateway image: build with the dev toolchain, ship only the compiled gateway.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts ./scripts
# --ignore-scripts: `prepare` would build before src is copied; the build is the next step.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Health checks in plain node (this image has no curl): the gateway's /healthz here; the compose
# file checks /readyz for gateways and the NATS connection for workers (scripts/healthcheck.mjs).
COPY scripts/healthcheck.mjs ./scripts/healthcheck.mjs
# The hardened gateway config of examples/secure: it reads every secret from the environment and
# refuses to start while one is missing (examples/secure/.env.example lists them).
COPY examples/secure/gateway.config.mjs ./config/gateway.config.mjs
ENV HOST=0.0.0.0 PORT=4000
USER node
EXPOSE 4000
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "scripts/healthcheck.mjs", "gateway", "/healthz"]
ENTRYPOINT ["node", "dist/cli/gen-gateway.js"]
# The insecure dev demo instead: docker run -p 4000:4000 <image> --demo --host 0.0.0.0
CMD ["--config", "/app/config/gateway.config.mjs"]
