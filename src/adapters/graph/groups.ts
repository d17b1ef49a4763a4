// Entra ID group membership over Microsoft Graph (v1.0), as documented for
// "List group transitive members" (https://learn.microsoft.com/graph/api/group-list-transitivemembers):
//   GET {graph}/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user?$select=id,userPrincipalName,mail&$top=999
// answers `{ value: [{ id, userPrincipalName, mail }], "@odata.nextLink"?: <absolute URL of the next page> }`;
// nested groups are flattened by Graph itself (only users come back, through the OData cast).
// 429 / 503 / 504 are retried after Retry-After (seconds). The identity needs GroupMember.Read.All
// (application permission), nothing more.
import type { GroupDirectory } from '../../app/ports.js';
import type { DirectoryMember } from '../../core/directory.js';

export interface GraphGroupsOptions {
  /** A bearer token for Microsoft Graph (scope `<graph>/.default`). */
  token: () => Promise<string>;
  /** Default https://graph.microsoft.com. */
  baseUrl?: string;
  /** Retries of one page after 429 / 503 / 504 (default 3). */
  maxRetries?: number;
  /** A Retry-After longer than this fails the read instead of waiting (default 30 s). */
  maxRetryAfterMs?: number;
  /** Per HTTP request (default 20 s). */
  requestTimeoutMs?: number;
  /** At most this many pages per group (default 1000, i.e. ~1 million users at $top=999). */
  maxPages?: number;
  sleep?: (ms: number) => Promise<void>;
}

interface GraphPage {
  value?: Array<{ id?: unknown; userPrincipalName?: unknown; mail?: unknown }>;
  '@odata.nextLink'?: unknown;
}

export class GraphGroupDirectory implements GroupDirectory {
  readonly kind = 'entra';
  /** Teams users are Entra ID accounts: `principals.<p>.teams: <object id>` pins them. */
  readonly pinPlatform = 'teams';
  label(groupId: string): string {
    return `Entra ID group ${groupId}`;
  }
  private readonly base: URL;

  constructor(private readonly opts: GraphGroupsOptions) {
    this.base = new URL(opts.baseUrl ?? 'https://graph.microsoft.com');
  }

  async members(groupId: string): Promise<DirectoryMember[]> {
    const first = new URL(`${this.base.origin}${this.base.pathname.replace(/\/$/, '')}/v1.0/groups/${encodeURIComponent(groupId)}/transitiveMembers/microsoft.graph.user`);
    first.searchParams.set('$select', 'id,userPrincipalName,mail');
    first.searchParams.set('$top', '999');
    const out: DirectoryMember[] = [];
    let next: string | undefined = first.toString();
    let pages = 0;
    while (next !== undefined) {
      if (++pages > (this.opts.maxPages ?? 1000)) throw new Error(`Microsoft Graph: more than ${this.opts.maxPages ?? 1000} pages of members`);
      // The token goes only to Graph: a next link elsewhere is refused, not followed.
      if (new URL(next).origin !== this.base.origin) throw new Error(`Microsoft Graph: @odata.nextLink points outside ${this.base.origin}`);
      const page = await this.get(next);
      for (const u of page.value ?? []) {
        if (typeof u.id !== 'string') continue;
        const names = [u.userPrincipalName, u.mail].filter((n): n is string => typeof n === 'string' && n.length > 0);
        out.push({ id: u.id, names });
      }
      const link = page['@odata.nextLink'];
      next = typeof link === 'string' ? link : undefined;
    }
    return out;
  }

  private async get(url: string): Promise<GraphPage> {
    const maxRetries = this.opts.maxRetries ?? 3;
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
    for (let attempt = 0; ; attempt++) {
      const token = await this.opts.token();
      const res = await fetch(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 20_000),
      });
      if (res.ok) return (await res.json()) as GraphPage;
      const body = await res.text().catch(() => '');
      if ((res.status === 429 || res.status === 503 || res.status === 504) && attempt < maxRetries) {
        const waitMs = retryAfterMs(res.headers.get('retry-after')) ?? 2 ** attempt * 1000;
        if (waitMs > (this.opts.maxRetryAfterMs ?? 30_000)) throw new Error(`Microsoft Graph throttled the read (HTTP ${res.status}, Retry-After ${Math.ceil(waitMs / 1000)}s)`);
        await sleep(waitMs);
        continue;
      }
      throw new Error(graphError(res.status, body));
    }
  }
}

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function graphError(status: number, body: string): string {
  let code = '';
  let message = '';
  try {
    const e = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error;
    code = e?.code ?? '';
    message = e?.message ?? '';
  } catch {
    /* not JSON */
  }
  const said = `HTTP ${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
  if (status === 401 || status === 403) return `Microsoft Graph refused the read (${said}); the bot's identity needs the application permission GroupMember.Read.All, with admin consent`;
  if (status === 404) return `Microsoft Graph has no such group (${said}); check the object id under groups in the policy file`;
  return `Microsoft Graph answered ${said}`;
}

/** DefaultAzureCredential (managed identity, workload identity, environment, Azure CLI) for Graph. */
export async function graphDirectoryFromEnv(config: { JIT_GRAPH_URL: string; AZURE_AUTHORITY_HOST?: string | undefined; AZURE_REQUEST_TIMEOUT: number }): Promise<GraphGroupDirectory> {
  // The SDK loads only when a policy names an Entra ID group.
  const { DefaultAzureCredential } = await import('@azure/identity');
  const credential = new DefaultAzureCredential(config.AZURE_AUTHORITY_HOST ? { authorityHost: config.AZURE_AUTHORITY_HOST } : {});
  const scope = `${new URL(config.JIT_GRAPH_URL).origin}/.default`;
  return new GraphGroupDirectory({
    baseUrl: config.JIT_GRAPH_URL,
    requestTimeoutMs: config.AZURE_REQUEST_TIMEOUT,
    token: async () => {
      const t = await credential.getToken(scope);
      if (!t) throw new Error(`no token for ${scope} from DefaultAzureCredential`);
      return t.token;
    },
  });
}
