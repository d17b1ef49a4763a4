// Targets and ports a network provider defines itself (Defender for Cloud's JIT policies), merged
// over the policy file's book. Pure; policy.ts re-exports it.
import { normalizeScope, own, type PolicyBook, type PolicyDef } from './policy.js';
import type { NetworkTarget, PortRule, Target } from './types.js';
import { parseTargetName } from './ids.js';

/**
 * Targets and port rules that a network provider defines itself (Defender for Cloud's JIT
 * policies): the provider's ports, maximum durations and sources are the truth for these VMs; the
 * policy file adds who may request and who approves.
 */
export interface NetworkPolicies {
  /** Who defines them, for origins and messages (`defender`). */
  source: string;
  targets: Array<{
    target: NetworkTarget;
    ports: PortRule[];
    /** The provider's policy, e.g. `prod/default` (shown as the origin of the ports). */
    policy: string;
  }>;
}

/**
 * The policy file's book with a network provider's targets and ports merged in. Each imported VM
 * becomes a target (unless the file names it already: the file's target keeps its name, address and
 * user) and gets a policy at the VM's own scope that sets only its ports, so it overrides any
 * ports the file sets above it while approvals, channels and the rest still come from the file.
 * Returns notes on what could not be merged.
 */
export function withNetworkPolicies(file: PolicyBook, net: NetworkPolicies | undefined): { book: PolicyBook; notes: string[] } {
  if (!net) return { book: file, notes: [] };
  const notes: string[] = [];
  const targets: Record<string, Target> = { ...file.targets };
  const byId = new Map(Object.values(file.targets).map((t) => [normalizeScope(t.id), t]));
  const policies: PolicyDef[] = [...file.policies];
  for (const { target, ports, policy } of net.targets) {
    const known = byId.get(normalizeScope(target.id));
    let merged: Target;
    if (known) merged = known;
    else {
      const name = parseTargetName(target.name);
      if (!name) {
        notes.push(`${target.id}: the VM name "${target.name}" cannot be typed in chat; name it under targets in the policy file`);
        continue;
      }
      const clash = own(targets, name);
      if (clash) {
        notes.push(`${target.id}: the policy file's target "${name}" is another VM (${clash.id}); name this one under targets in the policy file`);
        continue;
      }
      merged = { ...target, name };
      targets[name] = merged;
      byId.set(normalizeScope(target.id), merged);
    }
    if (ports.length === 0) {
      notes.push(`${merged.name}: ${net.source} policy ${policy} opens no port of it`);
      continue;
    }
    policies.push({ name: `${net.source}:${policy}`, scope: normalizeScope(merged.id), ports });
  }
  return { book: { ...file, targets, policies }, notes };
}
