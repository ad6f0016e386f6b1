# syntax=docker/dockerfile:1
# The relay in one image. Default: the all-in-one relay with the sample room (`node cmd/relay.js`); one part per
# container with `node cmd/api.js`, `node cmd/media.js` or `node cmd/worker.js` (docker-compose.yml, compose.split.yml).
# Checked without a Docker engine by test/unit/docker-files.test.ts and run from a copy laid out as below by
# test/integration/image-layout.test.ts.

# 1. Compile the TypeScript (src, cmd, fixtures/make.ts) to plain ES modules in dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY cmd ./cmd
COPY fixtures/make.ts ./fixtures/make.ts
RUN npm run build

# 2. Production dependencies only. Optional ones are left out: the 2018 static ffmpeg of @ffmpeg-installer (the image
# runs Debian's), esbuild's binaries (tsx is not used here) and msgpackr's native speed-up (it falls back to JS).
FROM node:20-bookworm-slim AS deps
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# 3. The image: Debian's ffmpeg 5.1 (SRT, libopus, libvpx, dav1d, security fixes) and tini as PID 1 (signals reach
# node, zombies are reaped); compiled JS run by node itself; a non-root user.
FROM node:20-bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
  RELAY_DATA_DIR=/data \
  RELAY_BIND=0.0.0.0 \
  RELAY_MEDIA_NODES=1 \
  FFMPEG_PATH=/usr/bin/ffmpeg
WORKDIR /app
COPY --from=deps /build/node_modules ./node_modules
COPY package.json ./
COPY --from=build /build/dist ./
COPY web ./web
# Sample media of the sample room, made now with the image's ffmpeg; the relay user owns them (a start re-stamps them)
# and its data folder.
RUN node fixtures/make.js \
  && mkdir -p /data \
  && chown -R node:node /data /app/fixtures/media
USER node
VOLUME ["/data"]
EXPOSE 8090 8000 1935
# Liveness of the API port (`node cmd/healthcheck.js media` checks the media port: compose sets it for `media`).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["node", "cmd/healthcheck.js"]
ENTRYPOINT ["/usr/bin/tini", "-s", "--"]
CMD ["node", "cmd/relay.js"]
