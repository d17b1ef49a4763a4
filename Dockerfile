# jit-bot: multi-stage build, production dependencies only, runs as a non-root user.
#   docker build -t jit-bot .      (docker compose builds it for you)

# 1. Dependencies: exactly the lockfile's production tree.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 2. Runtime: the sources, the card templates, the example policy and the production modules.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 JIT_DATA_DIR=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
COPY cards ./cards
COPY config ./config
COPY manifest ./manifest
RUN mkdir -p /data && chown node:node /data
# The image's built-in unprivileged user (uid 1000); nothing it runs can write to /app.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# tsx is the runtime (as for `npm start`): it compiles src/ on load; there is no build step.
CMD ["node", "--import", "tsx", "src/main.ts"]
