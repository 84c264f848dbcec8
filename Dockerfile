# One image for the whole workspace; each compose service runs one daemon from it.
# Two stages: the build stage has the compilers (native modules) and the dev dependencies
# (esbuild); the runtime stage has the compiled services, production dependencies only,
# and runs as the unprivileged `node` user.
FROM node:22-bookworm-slim AS build

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts/build.mjs scripts/
COPY shared/ shared/
COPY services/ services/
# npm ci builds the native modules and, through `prepare`, compiles every service to dist/.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund
# What the runtime needs: package manifests (workspace links), compiled output, production
# node_modules, the CLI's bin, and the files the code reads beside its sources.
RUN mkdir /out \
 && cp -a package.json node_modules /out/ \
 && for d in shared/* services/*; do \
      mkdir -p /out/$d && cp $d/package.json /out/$d/; \
      for sub in dist bin static node_modules; do [ -e $d/$sub ] && cp -a $d/$sub /out/$d/; done; \
    done; true

FROM node:22-bookworm-slim

# redis-server: per-app Redis instances (the redis addon); ca-certificates: outbound TLS for mail relaying.
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY --from=build /out/ ./
RUN ln -s /app/services/cli/bin/hearth.mjs /usr/local/bin/hearth \
 && mkdir -p /data && chown node:node /data

ENV NODE_ENV=production \
    HEARTH_LISTEN=0.0.0.0 \
    HEARTH_DATA_DIR=/data
USER node
VOLUME ["/data"]
EXPOSE 3890 6360 2525 2465 2025 1143 1993 1110 1995 4190 4000 4100 4180 3478/tcp 3478/udp 5349 2222 2376 6380-6479
# The default command runs every daemon under the supervisor; compose runs one per service.
CMD ["node", "--enable-source-maps", "services/supervisor/dist/main.js"]
