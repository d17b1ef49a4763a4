// Whole-NSG writes (JIT_NSG_WRITES=auto): what the PUT carries, and which refusals send an NSG back
// to child-rule operations. The writer itself is AzureGate.writeNsgWhole (it shares the gate's
// queue, lock and retry rules).
import { ArmError, type ArmDoc } from './arm.js';

/** How long an NSG whose whole-NSG write ARM refused is written with child rules before trying again. */
export const CHILD_RULES_FOR_MS = 60 * 60_000;

/**
 * ARM's refusals of a whole-NSG PUT that child-rule operations do not meet: the role lacks
 * `networkSecurityGroups/write` (403 AuthorizationFailed), someone's rule references an
 * application security group whose join action the role lacks (403 LinkedAuthorizationFailed),
 * an Azure Policy deny matches someone's rule in the body (403 RequestDisallowedByPolicy).
 */
export function childRulesOnly(err: unknown): string | undefined {
  if (!(err instanceof ArmError)) return undefined;
  return /^(AuthorizationFailed|LinkedAuthorizationFailed|RequestDisallowedByPolicy)$/i.test(err.code) ? err.code : undefined;
}

interface RuleLike {
  name: string;
  properties: { provisioningState?: string };
}

/**
 * The body of a whole-NSG PUT from the NSG as read and edited: location, tags, the owner's
 * `flushConnection`, and every rule (name and writable properties). Read-only state (etag,
 * provisioningState, default rules, associated subnets and NICs, resource GUID) is left out.
 */
export function wholeNsgBody(doc: ArmDoc, rules: RuleLike[]): ArmDoc {
  const p = doc.properties ?? {};
  return {
    location: doc.location,
    ...(doc.tags ? { tags: doc.tags } : {}),
    properties: {
      ...(p.flushConnection !== undefined ? { flushConnection: p.flushConnection } : {}),
      securityRules: rules.map((r) => {
        const { provisioningState: _ignored, ...props } = r.properties;
        return { name: r.name, properties: props };
      }),
    },
  };
}
