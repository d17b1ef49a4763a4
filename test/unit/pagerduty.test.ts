// The PagerDuty on-call adapter against PagerDuty's REST API v2 (GET /oncalls), intercepted with nock.
import nock from 'nock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PagerDutyOnCall } from '../../src/adapters/pagerduty/oncall.js';
import { p } from '../fixtures/ids.js';

const PD = 'https://api.pagerduty.com';
const AT = Date.UTC(2026, 10, 26, 10, 0);
const oncalls = (email: string, schedule = 'PSCHED1') => ({
  oncalls: [{ escalation_level: 1, schedule: { id: schedule, type: 'schedule_reference' }, user: { id: 'PU1', type: 'user', email, summary: 'Sam' }, start: '2026-11-26T08:00:00Z', end: '2026-11-27T08:00:00Z' }],
  limit: 25, offset: 0, more: false, total: null,
});

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('PagerDutyOnCall (nock)', () => {
  it('asks /oncalls for the schedules at that instant with the API token, and matches the email', async () => {
    let seen: { auth?: string; accept?: string; query?: Record<string, unknown> } = {};
    nock(PD)
      .get('/oncalls')
      .query((q) => {
        seen.query = q;
        return true;
      })
      .reply(function () {
        seen = { ...seen, auth: this.req.headers.authorization as string, accept: this.req.headers.accept as string };
        return [200, oncalls('Sam@Contoso.com')];
      });
    const pd = new PagerDutyOnCall({ token: 'pd-token' });
    expect(await pd.isOnCall(p('sam@contoso.com'), ['PSCHED1'], AT)).toBe(true);
    expect(seen.auth).toBe('Token token=pd-token');
    expect(seen.accept).toBe('application/vnd.pagerduty+json;version=2');
    expect(seen.query).toMatchObject({ 'schedule_ids[]': 'PSCHED1', 'include[]': 'users', since: '2026-11-26T10:00:00.000Z', until: '2026-11-26T10:00:00.000Z' });
  });

  it('someone else on call, or on another schedule, is not on call; answers are cached for a minute', async () => {
    nock(PD).get('/oncalls').query(true).once().reply(200, oncalls('carol@contoso.com'));
    const pd = new PagerDutyOnCall({ token: 't' });
    expect(await pd.isOnCall(p('sam@contoso.com'), ['PSCHED1'], AT)).toBe(false);
    expect(await pd.isOnCall(p('carol@contoso.com'), ['PSCHED1'], AT + 30_000)).toBe(true); // cached: no second call
    nock(PD).get('/oncalls').query(true).reply(200, oncalls('sam@contoso.com', 'POTHER'));
    expect(await pd.isOnCall(p('sam@contoso.com'), ['PSCHED1'], AT + 61_000)).toBe(false);
  });

  it('errors, malformed answers and timeouts throw (the service then falls back to a human)', async () => {
    nock(PD).get('/oncalls').query(true).reply(401, { error: { message: 'Unauthorized', code: 2006 } });
    await expect(new PagerDutyOnCall({ token: 'bad' }).isOnCall(p('sam@contoso.com'), ['P1'], AT)).rejects.toThrow(/HTTP 401/);
    nock(PD).get('/oncalls').query(true).reply(200, { something: 'else' });
    await expect(new PagerDutyOnCall({ token: 't' }).isOnCall(p('sam@contoso.com'), ['P1'], AT)).rejects.toThrow(/no "oncalls" array/);
    nock(PD).get('/oncalls').query(true).delay(500).reply(200, oncalls('sam@contoso.com'));
    await expect(new PagerDutyOnCall({ token: 't', timeoutMs: 50 }).isOnCall(p('sam@contoso.com'), ['P1'], AT)).rejects.toThrow();
  });
});
