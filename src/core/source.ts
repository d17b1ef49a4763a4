// Source addresses: IPv4 / IPv6 addresses and CIDR prefixes, validated with ipaddr.js and kept
// in one normal form (`203.0.113.7/32`, `2001:db8::/48`), or `*` for Any. Pure.
import ipaddr from 'ipaddr.js';
import { JitError } from './errors.js';

export const ANY = '*';
const ANY_WORDS = new Set(['*', 'any', 'internet', '0.0.0.0/0', '::/0']);

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

export const isAny = (source: string): boolean => ANY_WORDS.has(source.trim().toLowerCase());

const EXAMPLE = 'write an address like 203.0.113.7 or a range like 203.0.113.0/28';

function parseAddress(text: string, whole: string): Addr {
  if (/^\d+(\.\d+){3}$/.test(text) && text.split('.').some((octet) => octet.length > 1 && octet.startsWith('0'))) {
    throw new JitError('bad_source', `"${whole}" has a leading zero in an octet, which some tools read as octal; ${EXAMPLE}`);
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) {
    if (text.split('.').some((octet) => octet.length > 1 && octet.startsWith('0'))) {
      throw new JitError('bad_source', `"${whole}" has a leading zero in an octet, which some tools read as octal; ${EXAMPLE}`);
    }
    return ipaddr.IPv4.parse(text);
  }
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) {
    const v6 = ipaddr.IPv6.parse(text);
    if (v6.zoneId) throw new JitError('bad_source', `"${whole}" has a zone id (%${v6.zoneId}), which a network rule cannot use; ${EXAMPLE}`);
    return v6;
  }
  if (/^\d+(\.\d+){0,3}$/.test(text)) {
    throw new JitError('bad_source', `"${whole}" is not a full IPv4 address (four numbers 0-255); ${EXAMPLE}`);
  }
  throw new JitError('bad_source', `"${whole}" is not an IP address or CIDR range; ${EXAMPLE}`);
}

/**
 * Normalises an address or CIDR: `203.0.113.7` → `203.0.113.7/32`, `2001:DB8::1` →
 * `2001:db8::1/128`, IPv4-mapped IPv6 → IPv4, and every spelling of Any → `*`. A range with host
 * bits set (`203.0.113.7/24`) is refused with the network it probably meant.
 */
export function parseSource(input: string): string {
  const text = input.trim();
  if (text === '') throw new JitError('bad_source', `a source address is missing; ${EXAMPLE}`);
  if (isAny(text)) return ANY;
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const bitsText = slash === -1 ? undefined : text.slice(slash + 1);
  let addr = parseAddress(addrText, text);
  let bits: number;
  const max = addr.kind() === 'ipv4' ? 32 : 128;
  if (bitsText === undefined) bits = max;
  else {
    if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) {
      throw new JitError('bad_source', `"${text}" has a bad prefix length "/${bitsText}"; an ${addr.kind() === 'ipv4' ? 'IPv4 prefix is /0 to /32' : 'IPv6 prefix is /0 to /128'}`);
    }
    bits = Number(bitsText);
  }
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && (bitsText === undefined || bits >= 96)) {
    addr = (addr as ipaddr.IPv6).toIPv4Address();
    bits -= 96;
  }
  const network = networkOf(addr, bits);
  if (network.toString() !== addr.toString()) {
    // `203.0.113.7/0` is refused like `/24` with host bits: it is not a quiet way of saying Any.
    throw new JitError(
      'bad_source',
      bits === 0
        ? `"${text}" has host bits set: /0 is every address; write * if Any is meant (and the policy allows it), or ${addr.toString()} alone`
        : `"${text}" has host bits set; the /${bits} range it falls in is ${network.toString()}/${bits} (or use ${addr.toString()} alone)`,
    );
  }
  if (bits === 0) return ANY;
  return `${addr.toString()}/${bits}`;
}

function networkOf(addr: Addr, bits: number): Addr {
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes) as Addr;
}

function cidr(source: string): [Addr, number] {
  const [a, b] = source.split('/');
  const addr = ipaddr.parse(a!) as Addr;
  return [addr, b === undefined ? (addr.kind() === 'ipv4' ? 32 : 128) : Number(b)];
}

/** True when `inner` (normal form) lies entirely inside `outer` (normal form). */
export function sourceWithin(inner: string, outer: string): boolean {
  if (outer === ANY) return true;
  if (inner === ANY) return false;
  const [ia, ib] = cidr(inner);
  const [oa, ob] = cidr(outer);
  if (ia.kind() !== oa.kind() || ib < ob) return false;
  return ia.kind() === 'ipv4'
    ? (ia as ipaddr.IPv4).match(oa as ipaddr.IPv4, ob)
    : (ia as ipaddr.IPv6).match(oa as ipaddr.IPv6, ob);
}

/** True when a normalised source is allowed by any of the (normalised) prefixes. */
export function sourceAllowed(source: string, allowed: string[]): boolean {
  return allowed.some((p) => sourceWithin(source, p));
}

/** `Any (*)` or a comma list, for messages. */
export function describePrefixes(prefixes: string[]): string {
  return prefixes.map((p) => (p === ANY ? 'Any (*)' : p)).join(', ') || 'none';
}
