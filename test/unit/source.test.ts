import { describe, expect, it } from 'vitest';
import { ANY, describePrefixes, parseSource, sourceAllowed, sourceWithin } from '../../src/core/source.js';

describe('parseSource normalises', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7/32'],
    [' 203.0.113.7 ', '203.0.113.7/32'],
    ['203.0.113.0/28', '203.0.113.0/28'],
    ['203.0.113.7/32', '203.0.113.7/32'],
    ['2001:DB8::1', '2001:db8::1/128'],
    ['2001:db8:0:0::/64', '2001:db8::/64'],
    ['::ffff:198.51.100.9', '198.51.100.9/32'],
    ['*', ANY], ['any', ANY], ['Any', ANY], ['0.0.0.0/0', ANY], ['::/0', ANY], ['internet', ANY],
  ])('%j → %s', (input, out) => {
    expect(parseSource(input)).toBe(out);
  });

  it.each([
    ['', /missing/],
    ['300.1.1.1', /not a full IPv4 address/],
    ['1.2.3', /not a full IPv4 address/],
    ['010.0.0.1', /leading zero/],
    ['203.0.113.7/24', /host bits set; the \/24 range it falls in is 203\.0\.113\.0\/24/],
    ['2001:db8::1/64', /host bits set; the \/64 range it falls in is 2001:db8::\/64/],
    ['203.0.113.0/33', /bad prefix length/],
    ['2001:db8::/129', /bad prefix length/],
    ['203.0.113.0/abc', /bad prefix length/],
    ['fe80::1%eth0', /zone id/],
    ['my-laptop', /not an IP address or CIDR range/],
    ['203.0.113.7;rm -rf', /not an IP address/],
  ])('%j is refused (%s)', (input, message) => {
    expect(() => parseSource(input)).toThrow(message);
  });
});

describe('sourceWithin / sourceAllowed', () => {
  it('an address inside an allowed range is allowed; a wider range is not', () => {
    expect(sourceWithin('203.0.113.7/32', '203.0.113.0/24')).toBe(true);
    expect(sourceWithin('203.0.113.0/28', '203.0.113.0/24')).toBe(true);
    expect(sourceWithin('203.0.112.0/23', '203.0.113.0/24')).toBe(false);
    expect(sourceWithin('198.51.100.1/32', '203.0.113.0/24')).toBe(false);
  });
  it('IPv4 and IPv6 never match each other', () => {
    expect(sourceWithin('2001:db8::1/128', '203.0.113.0/24')).toBe(false);
    expect(sourceWithin('203.0.113.7/32', '2001:db8::/32')).toBe(false);
    expect(sourceWithin('2001:db8::1/128', '2001:db8::/32')).toBe(true);
  });
  it('Any is only allowed where the policy allows Any', () => {
    expect(sourceAllowed(ANY, ['203.0.113.0/24'])).toBe(false);
    expect(sourceAllowed(ANY, [ANY])).toBe(true);
    expect(sourceAllowed('203.0.113.7/32', [ANY])).toBe(true);
    expect(sourceAllowed('198.51.100.1/32', ['203.0.113.0/24', '198.51.100.0/24'])).toBe(true);
  });
  it('describes prefixes for messages', () => {
    expect(describePrefixes([ANY])).toBe('Any (*)');
    expect(describePrefixes(['203.0.113.0/24', '198.51.100.0/24'])).toBe('203.0.113.0/24, 198.51.100.0/24');
    expect(describePrefixes([])).toBe('none');
  });
});
