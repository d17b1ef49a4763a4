// Loads and validates the YAML policy file. Every error names the path of the bad key:
//   policies.prod.ports[1].maxDuration: "99x" is not a duration ...
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { fileSchema } from './policy-schema.js';
import { normalizeScope, type GroupSource, type PolicyBook, type PolicyDef } from '../core/policy.js';
import { GROUP_PREFIX, isGroupRef, parsePrincipal, parseTargetName } from '../core/ids.js';
import { parseSource } from '../core/source.js';
import type { Target } from '../core/types.js';

export class PolicyFileError extends Error {
  constructor(readonly file: string, readonly problems: string[]) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the policy file:\n  ${problems.join('\n  ')}`);
    this.name = 'PolicyFileError';
  }
}

function pathOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

/**
 * Parses YAML text into a PolicyBook; throws PolicyFileError listing every problem with its key path.
 * `platforms`: the chat platforms the server has; a key naming another one (a typo) is refused.
 * Without it any well-formed platform name is taken.
 */
export function parsePolicyText(text: string, file = 'policy file', platforms?: readonly string[]): PolicyBook {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) throw new PolicyFileError(file, doc.errors.map((e) => `YAML: ${e.message}`));
  let raw: unknown;
  try {
    // toJS resolves aliases and tags; a dangling alias (`*x`) or a bad tag fails only here.
    raw = doc.toJS();
  } catch (e) {
    throw new PolicyFileError(file, [`YAML: ${e instanceof Error ? e.message : String(e)}`]);
  }
  // A key such as `__proto__` would be dropped (or worse) by the object-building below: name it.
  const rawTargets = raw && typeof raw === 'object' ? (raw as Record<string, unknown>).targets : undefined;
  if (rawTargets && typeof rawTargets === 'object') {
    const bad = Object.keys(rawTargets).filter((name) => !parseTargetName(name));
    if (bad.length) throw new PolicyFileError(file, bad.map((name) => `targets.${name}: "${name}" is not a VM name people can type (letters, digits, . _ -, starting with a letter or digit)`));
  }
  const parsed = fileSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new PolicyFileError(
      file,
      parsed.error.issues.map((i) => {
        const got = valueAt(raw, i.path);
        const shown = i.code === 'custom' || got === undefined ? '' : ` (got ${JSON.stringify(got)})`;
        return `${pathOf(i.path)}: ${i.message}${shown}`;
      }),
    );
  }
  const f = parsed.data;
  const problems: string[] = [];
  const principals: PolicyBook['principals'] = {};
  for (const [p, info] of Object.entries(f.principals)) {
    const id = parsePrincipal(p);
    if (id === undefined) problems.push(`principals.${p}: "${p}" is not a principal (an email / UPN like alice@contoso.com)`);
    else principals[id] = info ?? {};
  }
  const targets: Record<string, Target> = {};
  for (const [name, t] of Object.entries(f.targets)) {
    // The same names chat accepts; `__proto__` and friends never become keys of the book.
    const key = parseTargetName(name);
    if (!key) {
      problems.push(`targets.${name}: "${name}" is not a VM name people can type (letters, digits, . _ -, starting with a letter or digit)`);
      continue;
    }
    const { firewall, ...rest } = t;
    targets[key] = {
      name: key,
      ...rest,
      ...(firewall
        ? {
            firewall: {
              ...(firewall.firewall ? { firewallId: firewall.firewall } : {}),
              ...(firewall.policy ? { policyId: firewall.policy, ruleCollectionGroup: firewall.ruleCollectionGroup! } : {}),
              publicIp: firewall.publicIp,
              portPool: firewall.ports.split('-').map(Number) as [number, number],
              subnetPrefix: parseSource(firewall.subnet),
            },
          }
        : {}),
    };
  }
  const policies: PolicyDef[] = Object.entries(f.policies).map(([name, p]) => ({
    name,
    scope: normalizeScope(p.scope),
    ...(p.ports ? { ports: p.ports } : {}),
    ...(p.approval ? { approval: p.approval } : {}),
    ...(p.channels ? { channels: p.channels } : {}),
    ...(p.justification ? { justification: dropUndefined(p.justification) } : {}),
    ...(p.autoApprove ? { autoApprove: p.autoApprove } : {}),
    ...(p.reminder ? { reminder: p.reminder } : {}),
    ...(p.routing ? { routing: p.routing } : {}),
    ...(p.timeZone ? { timeZone: p.timeZone } : {}),
  }));
  if (platforms) {
    const unknown = (path: string, name: string) => {
      if (!platforms.includes(name)) problems.push(`${path}.${name}: there is no chat platform called "${name}" (this server has ${platforms.join(', ')})`);
    };
    for (const [p, info] of Object.entries(f.principals)) for (const name of Object.keys(info ?? {})) unknown(`principals.${p}`, name);
    for (const [name, p] of Object.entries(f.policies)) {
      for (const platform of Object.keys(p.channels ?? {})) unknown(`policies.${name}.channels`, platform);
      for (const [i, r] of (p.routing ?? []).entries()) for (const platform of Object.keys(r.platforms)) unknown(`policies.${name}.routing[${i}]`, platform);
    }
  }
  for (const [i, r] of f.roles.entries()) {
    if (isGroupRef(r.principal) && !Object.hasOwn(f.groups, r.principal.slice(GROUP_PREFIX.length))) {
      problems.push(`roles[${i}].principal: group "${r.principal.slice(GROUP_PREFIX.length)}" is not defined under groups`);
    }
  }
  for (const [name, p] of Object.entries(f.policies)) {
    for (const [i, a] of (p.approval?.approvers ?? []).entries()) {
      if (isGroupRef(a) && !Object.hasOwn(f.groups, a.slice(GROUP_PREFIX.length))) {
        problems.push(`policies.${name}.approval.approvers[${i}]: group "${a.slice(GROUP_PREFIX.length)}" is not defined under groups`);
      }
    }
    const seen = new Set<string>();
    for (const [i, r] of (p.ports ?? []).entries()) {
      const key = `${r.port}/${r.protocol}`;
      if (seen.has(key)) problems.push(`policies.${name}.ports[${i}]: port ${key} is listed twice`);
      seen.add(key);
    }
  }
  if (problems.length) throw new PolicyFileError(file, problems);
  const groups: PolicyBook['groups'] = {};
  const directory: Record<string, GroupSource[]> = {};
  for (const [name, g] of Object.entries(f.groups)) {
    groups[name] = g.members;
    if (g.sources.length) directory[name] = g.sources;
  }
  return { principals, groups, roles: f.roles, targets, policies, ...(Object.keys(directory).length ? { directory } : {}) };
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

export async function loadPolicyFile(file: string, platforms?: readonly string[]): Promise<PolicyBook> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PolicyFileError(file, [code === 'ENOENT' ? 'file not found (set JIT_POLICY_FILE to your policy file)' : `cannot read: ${String(e)}`]);
  }
  return parsePolicyText(text, file, platforms);
}
