// Issue 17 item 10: a leaked MICROSOFT_APP_PASSWORD must not let anyone forge incoming Teams
// activities. botbuilder accepts, besides the channel service's tokens, "emulator" (and skill)
// tokens: Entra ID tokens whose azp/appid is the bot's app id, not bound to the activity's
// serviceUrl. Whoever holds the client secret gets one from Entra ID by client credentials (scope
// `<app id>/.default`, as the Bot Framework Emulator does). jit-bot accepts channel tokens only.
// Without the fix, the forged approval below goes through (checked by hand: the request became
// active and the forger's serviceUrl received the bot's replies).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { actionActivity, cardOf, channelConversation, messageActivity, personalConversation, postActivity } from '../fakes/connector.js';
import { waitFor } from '../integration/harness.js';
import { ALICE, APP_ID, APPROVALS, BOB, startSecuredTeams, type SecuredTeams } from './secured-teams.js';
import { p } from '../fixtures/ids.js';

let t: SecuredTeams;
let attacker: Server;
let attackerUrl = '';
const attackerCalls: string[] = [];

beforeAll(async () => {
  t = await startSecuredTeams();
  // Where a forger would have the bot send its answers (the emulator path does not bind serviceUrl).
  attacker = createServer((req, res) => {
    attackerCalls.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"x"}');
  });
  attacker.listen(0, '127.0.0.1');
  await once(attacker, 'listening');
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await t?.close();
  attacker?.closeAllConnections();
  await new Promise<void>((r) => (attacker ? attacker.close(() => r()) : r()));
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Alice's pending request, made through Teams with a genuine channel token. */
async function pendingRequest(): Promise<string> {
  const before = t.bf.to(personalConversation(ALICE).id).length;
  const res = await postActivity(t.h.app.url, messageActivity(t.bf.url, ALICE, 'rdp vm1 1h from 203.0.113.7'), bearer(t.idp.channelToken(APP_ID, t.bf.url)));
  expect(res.status).toBe(200);
  const reply = await waitFor('reply', async () => t.bf.to(personalConversation(ALICE).id)[before]);
  const id = /Request (r[0-9a-z]{9})/.exec(JSON.stringify(cardOf(reply)))?.[1];
  expect(id).toBeDefined();
  return id!;
}

describe('forged Teams activities with the bot\'s own credentials', () => {
  it('control: an activity with the channel service\'s token is answered (the fake identity services work)', async () => {
    const id = await pendingRequest();
    expect((await t.h.get(id))?.status).toBe('pending');
    // Proactive messages work with the bot's credentials too: the approval card reaches the channel.
    await waitFor('approval card', async () => t.bf.to(APPROVALS).find((c) => JSON.stringify(cardOf(c)).includes(`Access request ${id}`)));
    await t.h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('an Entra ID client-credentials token (v2 and v1) for the app id is refused: 401, no approval, no reply anywhere', async () => {
    const id = await pendingRequest();
    const connectorCalls = t.bf.calls.length;
    const audit = (await t.h.audit(id)).length;
    for (const token of [t.idp.clientCredentialsToken(APP_ID, '2.0'), t.idp.clientCredentialsToken(APP_ID, '1.0')]) {
      // Bob (an approver) "approves" Alice's request; replies would go to the forger's serviceUrl.
      const approve = await postActivity(t.h.app.url, actionActivity(attackerUrl, BOB, 'approve', { requestId: id }, channelConversation(APPROVALS)), bearer(token));
      expect(approve.status).toBe(401);
      const list = await postActivity(t.h.app.url, messageActivity(attackerUrl, BOB, 'list all'), bearer(token));
      expect(list.status).toBe(401);
    }
    expect((await t.h.get(id))?.status).toBe('pending');
    expect((await t.h.audit(id)).length).toBe(audit);
    expect(t.bf.calls.length).toBe(connectorCalls);
    expect(attackerCalls).toEqual([]);
    await t.h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a skill token (another bot calling this one, from Entra ID) is refused too', async () => {
    const id = await pendingRequest();
    const token = t.idp.clientCredentialsToken('11111111-0000-4000-8000-0000000000b2', '1.0', APP_ID);
    const approve = await postActivity(t.h.app.url, actionActivity(attackerUrl, BOB, 'approve', { requestId: id }, channelConversation(APPROVALS)), bearer(token));
    expect(approve.status).toBe(401);
    expect((await t.h.get(id))?.status).toBe('pending');
    expect(attackerCalls).toEqual([]);
    await t.h.app.service.revoke(p('alice@contoso.com'), id);
  });

  it('a channel token for another serviceUrl, or for another app, is refused (botbuilder\'s own channel checks still hold)', async () => {
    const id = await pendingRequest();
    const wrongUrl = await postActivity(t.h.app.url, actionActivity(attackerUrl, BOB, 'approve', { requestId: id }, channelConversation(APPROVALS)), bearer(t.idp.channelToken(APP_ID, t.bf.url)));
    expect(wrongUrl.status).toBe(401);
    const otherApp = await postActivity(t.h.app.url, actionActivity(t.bf.url, BOB, 'approve', { requestId: id }, channelConversation(APPROVALS)), bearer(t.idp.channelToken('22222222-0000-4000-8000-0000000000c3', t.bf.url)));
    expect(otherApp.status).toBe(401);
    expect((await t.h.get(id))?.status).toBe('pending');
    await t.h.app.service.revoke(p('alice@contoso.com'), id);
  });
});
