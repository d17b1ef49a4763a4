// jit-bot with Teams *authenticated* (an app id and client secret), as in production: incoming
// tokens are checked by botbuilder against the OpenID metadata and keys of a local fake of the
// Bot Framework channel service and of Entra ID; replies go to a local fake Bot Connector.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_POLICY_YAML } from '../fixtures/book.js';
import { FakeBotFrameworkAuth, FixedTokenCredentialsFactory } from '../fakes/botframework-auth.js';
import { FakeConnector, TENANT, type TeamsUser } from '../fakes/connector.js';
import { startHarness, type Harness } from '../integration/harness.js';

export const APP_ID = '00000000-0000-4000-8000-0000000000a1';
export const APP_PASSWORD = 'leaked-client-secret';
export const APPROVALS = '19:approvals@thread.tacv2';

const user = (name: string, aad: string, upn: string): TeamsUser => ({ id: `29:1${name}`, name, aadObjectId: aad, userPrincipalName: upn });
export const ALICE = user('alice', '6f1c0c1e-0000-4000-8000-00000000a11c', 'alice@contoso.com');
export const BOB = user('bob', '6f1c0c1e-0000-4000-8000-000000000b0b', 'bob@contoso.com'); // an approver, pinned by AAD id
export const CAROL = user('carol', '6f1c0c1e-0000-4000-8000-0000000ca201', 'carol@contoso.com'); // an approver, by UPN

export interface SecuredTeams {
  h: Harness;
  bf: FakeConnector;
  idp: FakeBotFrameworkAuth;
  close(): Promise<void>;
}

export async function startSecuredTeams(env: Record<string, string> = {}, extraUsers: TeamsUser[] = []): Promise<SecuredTeams> {
  const bf = await new FakeConnector([ALICE, BOB, CAROL, ...extraUsers]).start();
  const idp = await new FakeBotFrameworkAuth().start();
  const dir = mkdtempSync(join(tmpdir(), 'jit-teams-sec-'));
  const policy = TEST_POLICY_YAML.replace('bob@contoso.com: { slack: U024BOB }', `bob@contoso.com: { slack: U024BOB, teams: ${BOB.aadObjectId} }`).replace(
    'approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }',
    `approval: { required: true, approvers: [group:oncall], quorum: 1, timeout: PT1H }
    channels: { teams: { approvals: "${APPROVALS}" } }`,
  );
  writeFileSync(join(dir, 'policy.yaml'), policy);
  const h = await startHarness(
    {
      JIT_POLICY_FILE: join(dir, 'policy.yaml'),
      MICROSOFT_APP_ID: APP_ID,
      MICROSOFT_APP_PASSWORD: APP_PASSWORD,
      MICROSOFT_APP_TYPE: 'MultiTenant',
      TEAMS_ALLOWED_TENANTS: TENANT,
      TEAMS_SERVICE_URL: bf.url,
      ...env,
    },
    { teamsAuth: { endpoints: idp.endpoints(), credentialsFactory: new FixedTokenCredentialsFactory(APP_ID, APP_PASSWORD) } },
  );
  return {
    h,
    bf,
    idp,
    async close() {
      await h.close();
      await bf.close();
      await idp.close();
    },
  };
}
