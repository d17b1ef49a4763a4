// A local stand-in for the two identity services botbuilder checks incoming tokens against, on
// 127.0.0.1: the Bot Framework channel service's OpenID metadata + signing keys (endorsed for
// msteams, as login.botframework.com publishes them), and Entra ID's (login.microsoftonline.com
// common v2.0) metadata + keys, which botbuilder uses for "emulator" and skill tokens. It mints
// tokens as each issuer would: a channel token as Teams sends with every activity, and the
// client-credentials token Entra ID gives anyone who holds the bot's app id and client secret.
import { generateKeyPairSync, createSign, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PasswordServiceClientCredentialFactory, TokenCredentials } from 'botframework-connector';
import type { TeamsAuthOverrides } from '../../src/adapters/teams/adapter.js';

export const CHANNEL_ISSUER = 'https://api.botframework.com';
/** The Bot Framework's own Entra tenant (botframework.com): where a MultiTenant bot gets its tokens. */
export const BOTFRAMEWORK_TENANT = 'd6d49420-f39b-4df7-a1dc-d59a935871db';

interface Keys {
  kid: string;
  privateKey: KeyObject;
  jwk: { kty: string; n: string; e: string };
}

function keys(kid: string): Keys {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; n: string; e: string };
  return { kid, privateKey, jwk };
}

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

function sign(k: Keys, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: k.kid, x5t: k.kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = createSign('RSA-SHA256').update(`${head}.${body}`).sign(k.privateKey);
  return `${head}.${body}.${b64url(sig)}`;
}

export class FakeBotFrameworkAuth {
  private readonly channel = keys('bf-channel-1');
  private readonly entra = keys('entra-1');
  private server: Server;
  /** Paths fetched (metadata and keys). */
  readonly fetched: string[] = [];
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]!;
      this.fetched.push(path);
      const send = (body: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (path === '/botframework/v1/.well-known/openidconfiguration') return send({ issuer: CHANNEL_ISSUER, jwks_uri: `${this.url}/botframework/v1/keys`, id_token_signing_alg_values_supported: ['RS256'] });
      if (path === '/botframework/v1/keys') return send({ keys: [{ ...this.channel.jwk, use: 'sig', kid: this.channel.kid, x5t: this.channel.kid, endorsements: ['msteams', 'webchat'] }] });
      if (path === '/entra/common/v2.0/.well-known/openid-configuration') return send({ issuer: 'https://login.microsoftonline.com/{tenantid}/v2.0', jwks_uri: `${this.url}/entra/common/discovery/v2.0/keys` });
      if (path === '/entra/common/discovery/v2.0/keys') return send({ keys: [{ ...this.entra.jwk, use: 'sig', kid: this.entra.kid, x5t: this.entra.kid }] });
      res.writeHead(404).end();
    });
  }

  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** botbuilder's public-cloud endpoints with the two metadata documents served here. */
  endpoints(): NonNullable<TeamsAuthOverrides['endpoints']> {
    return {
      ToBotFromChannelTokenIssuer: CHANNEL_ISSUER,
      ToBotFromChannelOpenIdMetadataUrl: `${this.url}/botframework/v1/.well-known/openidconfiguration`,
      ToBotFromEmulatorOpenIdMetadataUrl: `${this.url}/entra/common/v2.0/.well-known/openid-configuration`,
      ToChannelFromBotLoginUrl: 'https://login.microsoftonline.com/botframework.com',
      ToChannelFromBotOAuthScope: 'https://api.botframework.com',
      OAuthUrl: 'https://api.botframework.com',
      CallerId: 'urn:botframework:azure',
      ValidateAuthority: true,
    };
  }

  /** The token the Bot Framework channel service sends with an activity for `appId` from `serviceUrl`. */
  channelToken(appId: string, serviceUrl: string): string {
    const now = Math.floor(Date.now() / 1000);
    return sign(this.channel, { iss: CHANNEL_ISSUER, aud: appId, serviceurl: serviceUrl, nbf: now - 60, exp: now + 3600 });
  }

  /**
   * What Entra ID issues for `POST /botframework.com/oauth2/v2.0/token` with client credentials to
   * whoever holds the bot's client secret. The default scope `<app id>/.default` (what the Bot
   * Framework Emulator asks for) gives `aud` = the app id; `version` 1.0 is the v1 endpoint's shape.
   */
  clientCredentialsToken(appId: string, version: '1.0' | '2.0' = '2.0', audience: string = appId): string {
    const now = Math.floor(Date.now() / 1000);
    const common = { aud: audience, nbf: now - 60, iat: now - 60, exp: now + 3600, tid: BOTFRAMEWORK_TENANT, sub: appId, oid: '3f0c9b1e-0000-4000-8000-00000000a0a0' };
    return version === '2.0'
      ? sign(this.entra, { ...common, iss: `https://login.microsoftonline.com/${BOTFRAMEWORK_TENANT}/v2.0`, ver: '2.0', azp: appId, azpacr: '1' })
      : sign(this.entra, { ...common, iss: `https://sts.windows.net/${BOTFRAMEWORK_TENANT}/`, ver: '1.0', appid: appId, appidacr: '1' });
  }
}

/**
 * The bot's outbound credentials without Entra ID: a fixed bearer token (the fake connector does not
 * check it). App id checks stay botbuilder's own (PasswordServiceClientCredentialFactory).
 */
export class FixedTokenCredentialsFactory extends PasswordServiceClientCredentialFactory {
  override async createCredentials(appId: string): Promise<TokenCredentials> {
    if (!(await this.isValidAppId(appId))) throw new Error('Invalid appId.');
    return new TokenCredentials('outbound-test-token');
  }
}
