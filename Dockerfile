# One image for the whole workspace; each compose service runs one daemon from it.
FROM node:22-bookworm-slim

# redis-server: per-app Redis instances (the redis addon); ca-certificates: outbound TLS for mail relaying.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ redis-server ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/ shared/
COPY services/ services/
RUN npm ci --omit=dev
COPY tsconfig.json ./
RUN ln -s /app/services/cli/bin/hearth.mjs /usr/local/bin/hearth

ENV NODE_ENV=production \
    HEARTH_LISTEN=0.0.0.0 \
    HEARTH_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 3890 6360 2525 2465 2025 1143 1993 1110 1995 4190 4000 4100 4180 3478/tcp 3478/udp 5349 6380-6479
# The default command runs every daemon under the supervisor; compose runs one per service.
CMD ["node", "--import", "tsx", "services/supervisor/src/main.ts"]
