// Docker does not run on our build machines, so the deployment files are checked by reading them:
// docker-compose.yml (Redis durable and never evicting, healthchecks, the bot built from the
// Dockerfile with env from .env), the Dockerfile (multi-stage, production dependencies only,
// non-root), and .env.example (documents every variable the configuration accepts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const read = (f: string) => readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  env_file?: string | string[];
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
    expect(bot.env_file).toBe('.env');
    expect(bot.environment?.REDIS_URL).toBe('redis://redis:6379');
    expect(bot.environment?.JIT_LOCAL_CHANNEL).toBe('false');
    expect(bot.depends_on?.redis?.condition).toBe('service_healthy');
    expect(bot.healthcheck?.test.join(' ')).toContain('/readyz');
    expect(bot.stop_grace_period).toBeDefined();
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
  // Every variable of the configuration schema (src/config/env.ts).
  const schemaKeys = [...read('src/config/env.ts').matchAll(/^ {2}([A-Z][A-Z0-9_]+): /gm)].map((m) => m[1]!);

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
