import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressRefusal } from '../../src/identity/address-guard.ts';
import { createJsonFetcher } from '../../src/identity/fetch.ts';
import { IPV4_SPECIAL, IPV6_SPECIAL, NEVER_REACHED } from '../../src/identity/special-addresses.ts';
import { failsWith } from '../helpers.ts';

const STRICT = { allowLoopback: false, allowPrivate: false };
const OPEN = { allowLoopback: true, allowPrivate: true };

/** allow: never refused; refuse: refused even with loopback and private allowed; the rest: only when not allowed. */
type Expect = 'allow' | 'refuse' | 'loopback' | 'private' | 'link-local';

/** One address inside each registry row, outside any more specific row, and what the guard must do. */
const ROWS: readonly [block: string, sample: string, expect: Expect][] = [
  ['0.0.0.0/8', '0.1.2.3', 'refuse'],
  ['0.0.0.0/32', '0.0.0.0', 'refuse'],
  ['10.0.0.0/8', '10.20.30.40', 'private'],
  ['100.64.0.0/10', '100.127.255.254', 'private'],
  ['127.0.0.0/8', '127.1.2.3', 'loopback'],
  ['169.254.0.0/16', '169.254.169.254', 'link-local'],
  ['172.16.0.0/12', '172.31.255.1', 'private'],
  ['192.0.0.0/24', '192.0.0.100', 'refuse'],
  ['192.0.0.0/29', '192.0.0.1', 'refuse'],
  ['192.0.0.8/32', '192.0.0.8', 'refuse'],
  ['192.0.0.9/32', '192.0.0.9', 'allow'],
  ['192.0.0.10/32', '192.0.0.10', 'allow'],
  ['192.0.0.170/32', '192.0.0.170', 'refuse'],
  ['192.0.0.171/32', '192.0.0.171', 'refuse'],
  ['192.0.2.0/24', '192.0.2.55', 'refuse'],
  ['192.31.196.0/24', '192.31.196.1', 'allow'],
  ['192.52.193.0/24', '192.52.193.1', 'allow'],
  ['192.88.99.0/24', '192.88.99.1', 'refuse'],
  ['192.88.99.2/32', '192.88.99.2', 'refuse'],
  ['192.168.0.0/16', '192.168.1.1', 'private'],
  ['192.175.48.0/24', '192.175.48.6', 'allow'],
  ['198.18.0.0/15', '198.19.255.255', 'refuse'],
  ['198.51.100.0/24', '198.51.100.7', 'refuse'],
  ['203.0.113.0/24', '203.0.113.9', 'refuse'],
  ['240.0.0.0/4', '250.1.2.3', 'refuse'],
  ['255.255.255.255/32', '255.255.255.255', 'refuse'],
  ['::1/128', '::1', 'loopback'],
  ['::/128', '::', 'refuse'],
  ['::ffff:0:0/96', '::ffff:198.18.0.1', 'refuse'],
  ['64:ff9b::/96', '64:ff9b::8.8.8.8', 'allow'],
  ['64:ff9b:1::/48', '64:ff9b:1::1', 'refuse'],
  ['100::/64', '100::1', 'refuse'],
  ['100:0:0:1::/64', '100:0:0:1::1', 'refuse'],
  ['2001::/23', '2001:100::1', 'refuse'],
  ['2001::/32', '2001:0:4136:e378:8000:63bf:3fff:fdd2', 'refuse'],
  ['2001:1::1/128', '2001:1::1', 'allow'],
  ['2001:1::2/128', '2001:1::2', 'allow'],
  ['2001:1::3/128', '2001:1::3', 'allow'],
  ['2001:2::/48', '2001:2::1', 'refuse'],
  ['2001:3::/32', '2001:3::1', 'allow'],
  ['2001:4:112::/48', '2001:4:112::1', 'allow'],
  ['2001:10::/28', '2001:10::1', 'refuse'],
  ['2001:20::/28', '2001:20::1', 'allow'],
  ['2001:30::/28', '2001:30::1', 'allow'],
  ['2001:db8::/32', '2001:db8::1', 'refuse'],
  ['2002::/16', '2002:c000:204::1', 'refuse'],
  ['2620:4f:8000::/48', '2620:4f:8000::1', 'allow'],
  ['3fff::/20', '3fff:fff::1', 'refuse'],
  ['5f00::/16', '5f00::1', 'refuse'],
  ['fc00::/7', 'fd12:3456::1', 'private'],
  ['fe80::/10', 'fe80::1', 'link-local'],
  ['224.0.0.0/4', '239.255.255.250', 'refuse'],
  ['ff00::/8', 'ff02::1', 'refuse'],
  ['fec0::/10', 'fec0::1', 'refuse'],
  ['::/96', '::10.0.0.1', 'refuse'],
];

/** Addresses that carry an IPv4 address, and ordinary ones. */
const MORE: readonly [sample: string, expect: Expect][] = [
  ['::ffff:8.8.8.8', 'allow'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['::ffff:a00:1', 'private'],
  ['64:ff9b::10.0.0.1', 'refuse'],
  ['64:ff9b::7f00:1', 'refuse'],
  ['64:ff9b::a9fe:a9fe', 'refuse'],
  ['64:ff9b::c612:1', 'refuse'],
  ['2002:a00:1::1', 'refuse'],
  ['2002:7f00:1::', 'refuse'],
  ['2002:c612:1::1', 'refuse'],
  ['2002:808:808::1', 'allow'],
  ['2001:0:808:808::1', 'refuse'],
  ['::808:808', 'refuse'],
  ['fe80::1%eth0', 'link-local'],
  ['FEC0:0:0:0:0:0:0:1', 'refuse'],
  ['4000::1', 'refuse'],
  ['8.8.8.8', 'allow'],
  ['2606:4700::1111', 'allow'],
];

function check(sample: string, expect: Expect): void {
  const strict = addressRefusal(sample, STRICT);
  const open = addressRefusal(sample, OPEN);
  if (expect === 'allow') {
    assert.equal(strict, undefined, `${sample} should be allowed`);
    return;
  }
  if (expect === 'refuse') {
    assert.ok(strict && open, `${sample} should be refused even when loopback and private are allowed`);
    return;
  }
  assert.equal(strict, `${expect} address`, sample);
  assert.equal(open, undefined, `${sample} should be allowed when the config allows ${expect}`);
}

describe('the metadata and JWKS fetch address guard', () => {
  it('covers every row of the IANA special-purpose registries and the never-reached blocks', () => {
    const data = [...IPV4_SPECIAL, ...IPV6_SPECIAL, ...NEVER_REACHED].map((r) => r.block).sort();
    assert.deepEqual(ROWS.map(([block]) => block).sort(), data);
  });

  for (const [block, sample, expect] of ROWS)
    it(`treats ${block} (${sample}) as ${expect}`, () => check(sample, expect));

  for (const [sample, expect] of MORE) it(`treats ${sample} as ${expect}`, () => check(sample, expect));

  it('refuses only the rows the registry does not mark globally reachable, loopback and private aside', () => {
    for (const row of [...IPV4_SPECIAL, ...IPV6_SPECIAL]) {
      const expect = ROWS.find(([block]) => block === row.block)![2];
      if (row.reachable === true) assert.equal(expect, 'allow', row.block);
      else assert.notEqual(expect, 'allow', row.block);
    }
  });

  it('refuses a fetch to a benchmarking address or to loopback behind NAT64, before connecting', async () => {
    const fetchJson = createJsonFetcher({ ...OPEN, timeoutMs: 2000, maxBytes: 1024, maxRedirects: 0 });
    for (const url of ['https://198.18.0.1/jwks', 'https://[64:ff9b::7f00:1]/jwks', 'https://[fec0::1]/']) {
      await assert.rejects(fetchJson(url), failsWith('ERR_FETCH_BLOCKED'), url);
    }
  });
});
