# jit-bot: multi-stage build, production dependencies only, runs as a non-root user.
#   docker build -t jit-bot .      (docker compose builds it for you)

# 1. Build: exactly the lockfile's production tree, and the bundles. `npm ci` runs the `prepare`
#    script, which bundles src/main.ts and src/cli.ts into dist/ with esbuild (a production
#    dependency); the check fails the build if it did not.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts/bundle.js ./scripts/
COPY src ./src
COPY cards ./cards
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force && node scripts/bundle.js --check

# 2. Runtime: the bundles, the production modules, the example policy and the manifests. No
#    TypeScript is compiled at start: the server is dist/main.js (the card templates and the
#    console's script are inside it). package.json makes dist/*.js ES modules.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 JIT_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
COPY manifest ./manifest
RUN mkdir -p /data && chown node:node /data
# The image's built-in unprivileged user (uid 1000); nothing it runs can write to /app.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# The bundle built above (what `npm start` runs outside Docker, after checking it against src/).
CMD ["node", "dist/main.js"]
