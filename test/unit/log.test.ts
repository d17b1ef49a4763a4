// Logs are JSON lines (pino) that never carry a secret: secret fields by name, credential-shaped
// strings anywhere (messages, nested fields, error messages and stacks).
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';

function capture(level: 'debug' | 'info' | 'warn' | 'error' = 'debug') {
  const lines: string[] = [];
  return { log: createLogger(level, (l) => lines.push(l)), lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

const SECRETS = {
  slackBot: 'xoxb-2222222222-3333333333-abcdefABCDEF123456',
  slackSig: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
  jwt: 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJib3QiLCJpc3MiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl',
  bearer: 'Bearer 0123456789abcdefghijklmnop',
  redisPassword: 'hunter2-redis-pass',
  appPassword: 'teams~app~password~value',
  apiToken: 'jit_k3Jd9sLq0Zr8VbN2mXc7TyWu',
};

describe('logs', () => {
  it('are one JSON object per line with time, level, msg and the fields (request ids kept)', () => {
    const c = capture();
    c.log.info('grant opened', { request: 'r7k2m9x4qa', target: 'vm1', ports: [3389] });
    const [line] = c.parsed();
    expect(line).toMatchObject({ level: 'info', msg: 'grant opened', request: 'r7k2m9x4qa', target: 'vm1', ports: [3389] });
    expect(Date.parse(String(line!.time))).not.toBeNaN();
  });

  it('respect the level', () => {
    const c = capture('warn');
    c.log.info('quiet');
    c.log.debug('quieter');
    c.log.warn('loud');
    expect(c.parsed().map((l) => l.msg)).toEqual(['loud']);
  });

  it('never print a token, signature, JWT, password or API token, whatever field or message carries it', () => {
    const c = capture();
    c.log.warn(`slack call failed with ${SECRETS.slackBot}`, {
      headers: { authorization: SECRETS.bearer, 'x-slack-signature': SECRETS.slackSig, 'x-slack-request-timestamp': '1700000000' },
      token: SECRETS.slackBot,
      body: `token=${SECRETS.slackBot}&signature=${SECRETS.slackSig}`,
      redis: `redis://default:${SECRETS.redisPassword}@redis:6379/0`,
      appPassword: SECRETS.appPassword,
      nested: { deeper: { jwt: SECRETS.jwt, list: [SECRETS.bearer] } },
      apiKey: `key ${SECRETS.apiToken}`,
      err: new Error(`401 from connector: ${SECRETS.bearer} / ${SECRETS.jwt}`),
    });
    const out = c.lines.join('\n');
    for (const [name, secret] of Object.entries(SECRETS)) expect(out, name).not.toContain(secret.replace(/^Bearer /, ''));
    // What is not secret survives, so the line is still useful.
    const [line] = c.parsed();
    expect(line!.msg).toMatch(/^slack call failed with /);
    expect((line!.headers as Record<string, string>)['x-slack-request-timestamp']).toBe('1700000000');
    expect(line!.redis).toBe('redis://default:[redacted]@redis:6379/0');
    expect((line!.err as { message: string }).message).toMatch(/^401 from connector: Bearer \[redacted\]/);
  });
});
