// Who may talk to the bot: only tokens the Bot Framework channel service issued, only activities
// from an allowed tenant, and (in unauthenticated local mode) only the configured Bot Connector.
import type { Activity } from 'botbuilder';
import {
  AuthenticationConstants,
  AuthenticationError,
  type AuthenticationConfiguration,
  type Claim,
  type ServiceClientCredentialsFactory,
} from 'botframework-connector';

export /** Whether two Bot Connector URLs are the same service (scheme, host, port, path; a trailing / aside). */
function sameService(a: string, b: string): boolean {
  try {
    const [x, y] = [new URL(a), new URL(b)];
    return x.origin === y.origin && x.pathname.replace(/\/+$/, '') === y.pathname.replace(/\/+$/, '');
  } catch {
    return false;
  }
}

/**
 * Bot Framework endpoints and credentials other than the public cloud's: a private cloud, or tests
 * (a local OpenID metadata / JWKS fake). With `endpoints`, botbuilder uses none of its defaults.
 */
export interface TeamsAuthOverrides {
  endpoints?: {
    ToBotFromChannelTokenIssuer: string;
    ToBotFromChannelOpenIdMetadataUrl: string;
    ToBotFromEmulatorOpenIdMetadataUrl: string;
    ToChannelFromBotLoginUrl: string;
    ToChannelFromBotOAuthScope: string;
    OAuthUrl: string;
    CallerId?: string;
    ValidateAuthority?: boolean;
  };
  credentialsFactory?: ServiceClientCredentialsFactory;
}

/**
 * Accepts only claims of a token the Bot Framework channel service issued (`iss` = the channel
 * token issuer). botbuilder also accepts "emulator" tokens (issued by Entra ID to any app, checked
 * only for `azp`/`appid` = our app id and not bound to the activity's serviceUrl) and skill
 * tokens: anyone holding the bot's client secret can mint those, so they are refused.
 */
export function channelTokensOnly(channelIssuer: string): AuthenticationConfiguration {
  return {
    requiredEndorsements: [],
    validateClaims: async (claims: Claim[]) => {
      const iss = claims.find((c) => c.type === AuthenticationConstants.IssuerClaim)?.value;
      if (iss !== channelIssuer) {
        throw new AuthenticationError(`Unauthorized: only tokens issued by the Bot Framework channel service (${channelIssuer}) are accepted, not "${String(iss)}"`, 401);
      }
    },
  };
}

/** The tenant an activity comes from: channelData.tenant.id and conversation.tenantId must agree. */
export function tenantOf(a: Partial<Activity>): { tenant?: string; conflict: boolean } {
  const fromData = (a.channelData as { tenant?: { id?: unknown } } | undefined)?.tenant?.id;
  const fromConv = a.conversation?.tenantId;
  const ids = [fromData, fromConv].filter((v): v is string => typeof v === 'string' && v !== '').map((v) => v.toLowerCase());
  const tenant = ids[0];
  return { ...(tenant ? { tenant } : {}), conflict: ids.some((v) => v !== tenant) };
}
