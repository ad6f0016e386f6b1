# The relay in one image; run all parts (`npm run relay`) or one part per container (`npm run api|worker|media`).
FROM node:20-bookworm-slim
WORKDIR /app
# Debian's ffmpeg 5.1 (SRT, libopus, libvpx, dav1d, security fixes): the relay prefers it to the bundled 2018 build.
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production RELAY_DATA_DIR=/data RELAY_BIND=0.0.0.0
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY src ./src
COPY cmd ./cmd
COPY web ./web
COPY fixtures/make.ts ./fixtures/make.ts
# Sample media for the sample room, made at build time with the chosen ffmpeg.
RUN npx tsx fixtures/make.ts
VOLUME ["/data"]
EXPOSE 8090 8000 1935
CMD ["npx", "tsx", "cmd/relay.ts"]
