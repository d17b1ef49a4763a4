// Docker does not run on our build machines, so the deployment files are checked by reading them:
// docker-compose.yml (Redis durable and never evicting, healthchecks, the bot built from the
// Dockerfile with env from .env), the Dockerfile (multi-stage, production dependencies only,
// non-root), and .env.example (documents every variable the configuration accepts).
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config/env.js';

const read = (f: string) => readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  env_file?: string | Array<string | { path: string; required?: boolean }>;
  profiles?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  volumes?: string[];
  stop_grace_period?: string;
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const redis = compose.services.redis!;
  const bot = compose.services['jit-bot']!;

  it('Redis keeps scheduled revocations: AOF persistence on a volume, noeviction, a healthcheck', () => {
    const arg = (name: string) => redis.command![redis.command!.indexOf(name) + 1];
    expect(arg('--appendonly')).toBe('yes');
    expect(arg('--maxmemory-policy')).toBe('noeviction');
    expect(redis.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('the bot is built from the Dockerfile, reads .env, waits for a healthy Redis, and is checked by /readyz', () => {
    expect(bot.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    // Optional: without a .env, `docker compose up -d redis` must still work (Compose < 2.34 reads
    // the env_file of every service, profile or not).
    expect(bot.env_file).toEqual([{ path: '.env', required: false }]);
    expect(bot.environment?.REDIS_URL).toBe('redis://redis:6379');
    expect(bot.environment?.JIT_LOCAL_CHANNEL).toBe('false');
    expect(bot.depends_on?.redis?.condition).toBe('service_healthy');
    expect(bot.healthcheck?.test.join(' ')).toContain('/readyz');
    expect(bot.stop_grace_period).toBeDefined();
  });
});

describe('docker-compose.yml says what it starts', () => {
  const text = read('docker-compose.yml');
  const header = text.slice(0, text.indexOf('services:'));
  const compose = parse(text) as { services: Record<string, Service> };

  it('the bot is behind the "bot" profile, and the header says so: plain `up -d` starts only Redis', () => {
    expect(compose.services['jit-bot']!.profiles).toEqual(['bot']);
    expect(compose.services.redis!.profiles).toBeUndefined();
    expect(compose.services.redis!.env_file).toBeUndefined();
    expect(header).toContain('docker compose --profile bot up -d --build');
    expect(header).toMatch(/docker compose up -d redis\s+only Redis/);
    expect(header).toContain('Without a profile (`docker compose up -d`) only Redis starts');
    // Every command line of the header that claims to start the bot names the profile.
    for (const line of header.split('\n').filter((l) => /^# docker compose .*\bup\b/.test(l) && /\bbot\b/.test(l.split(/\s{2,}/)[1] ?? ''))) {
      expect(line).toContain('--profile bot');
    }
  });
});

describe('production start: a prebuilt bundle, no TypeScript compiled at start', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string>; dependencies: Record<string, string>; bin: Record<string, string> };
  const df = read('Dockerfile');
  const build = df.slice(0, df.lastIndexOf('\nFROM '));
  const final = df.slice(df.lastIndexOf('\nFROM '));

  it('npm start and the CLI run the launchers; npm install / npm ci build the bundles (prepare), with esbuild a production dependency', () => {
    expect(pkg.scripts.start).toBe('node bin/jit-bot');
    expect(pkg.scripts.jit).toBe('node bin/jit');
    expect(pkg.bin).toEqual({ jit: 'bin/jit', 'jit-bot': 'bin/jit-bot' });
    expect(pkg.scripts.prepare).toBe('node scripts/bundle.js');
    expect(pkg.scripts.build).toBeUndefined();
    expect(pkg.dependencies.esbuild).toBeDefined();
    // The launchers run from a checkout without a build step of their own: executable, with a shebang.
    for (const bin of Object.values(pkg.bin)) {
      expect(read(bin).startsWith('#!/usr/bin/env node\n')).toBe(true);
      expect(statSync(new URL(`../../${bin}`, import.meta.url)).mode & 0o111).not.toBe(0);
    }
  });

  it('the Dockerfile builds the bundles in its build stage (npm ci runs prepare, then a check) and runs dist/main.js', () => {
    expect(build).toMatch(/^COPY src \.\/src$/m);
    expect(build).toMatch(/^COPY scripts\/bundle\.js \.\/scripts\/$/m);
    expect(build).toMatch(/npm ci --omit=dev[^\n]*&& node scripts\/bundle\.js --check$/m);
    expect(final).toMatch(/^COPY --from=\w+ \/app\/dist \.\/dist$/m);
    expect(final).toMatch(/^COPY package\.json \.\/$/m);
    expect(final).not.toMatch(/^COPY src\b/m);
    expect(df).toMatch(/^CMD \["node", "dist\/main\.js"\]$/m);
    expect(df).not.toContain('tsx');
    expect(read('README.md')).toMatch(/`npm ci` and\s+`npm install` build them/);
  });
});

describe('.ci/run', () => {
  it('installs packages only: the tests start their own Redis when none answers (test/global-setup.ts)', () => {
    const ci = read('.ci/run');
    expect(ci).toContain('apt-get install -y -qq redis-server');
    expect(ci).not.toMatch(/^\s*redis-server\s/m);
    expect(read('vitest.config.ts')).toContain("globalSetup: ['test/global-setup.ts']");
  });
});

describe('Dockerfile', () => {
  const df = read('Dockerfile');
  const stages = df.split('\n').filter((l) => /^FROM /i.test(l));
  const final = df.slice(df.lastIndexOf('\nFROM '));

  it('is multi-stage, on Node 20, with production dependencies only from the lockfile', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s).toMatch(/^FROM node:20[-\w.]* AS \w+/i);
    expect(df).toMatch(/npm ci --omit=dev/);
    expect(df).not.toMatch(/npm (i|install)\b/);
    expect(final).toMatch(/COPY --from=\w+ \/app\/node_modules/);
  });

  it('runs as a non-root user and ships no tests, benches or secrets', () => {
    const users = final.split('\n').filter((l) => /^USER /i.test(l)).map((l) => l.split(/\s+/)[1]);
    expect(users.at(-1)).toBeDefined();
    expect(['root', '0']).not.toContain(users.at(-1));
    expect(final).not.toMatch(/COPY (\.|test|bench)\s/);
    expect(read('.dockerignore')).toMatch(/^\.env$/m);
  });
});

describe('.env.example', () => {
  const example = read('.env.example');
  // Every variable of the configuration schema (the core's in src/config/env.ts and each adapter's).
  const schemaKeys = [...CONFIG_VARIABLES];

  it('documents every variable the configuration accepts', () => {
    expect(schemaKeys.length).toBeGreaterThan(40);
    const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(schemaKeys.filter((k) => !documented.has(k))).toEqual([]);
  });

  it('parses as a dotenv file (KEY=value lines and comments only)', () => {
    for (const line of example.split('\n')) {
      if (line.trim() === '' || line.startsWith('#')) continue;
      expect(line).toMatch(/^[A-Z][A-Z0-9_]*=\S*$/);
    }
  });
});
