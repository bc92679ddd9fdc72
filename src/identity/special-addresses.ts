/**
 * The IANA special-purpose address registries, row for row, as data.
 *
 * Sources (RFC 6890, RFC 8190):
 * - IANA IPv4 Special-Purpose Address Registry,
 *   https://www.iana.org/assignments/iana-ipv4-special-registry/ (25 records, as published 2025-10-09)
 * - IANA IPv6 Special-Purpose Address Registry,
 *   https://www.iana.org/assignments/iana-ipv6-special-registry/ (25 records, last updated 2025-10-09)
 *
 * `reachable` is the registry's "Globally Reachable" column as written there:
 * true, false, 'N/A' (2001::/32, 2002::/16) or '' (rows whose allocation was
 * terminated: 192.88.99.0/24, 2001:10::/28). The one registry row that names
 * two blocks (192.0.0.170/32, 192.0.0.171/32) is two rows here.
 *
 * `guard` is ours, not the registry's: the blocks a fetch may reach when the
 * config allows loopback or private addresses.
 */
export interface SpecialBlock {
  readonly block: string;
  readonly name: string;
  readonly rfc: string;
  readonly reachable: boolean | 'N/A' | '';
  readonly guard?: 'loopback' | 'private' | 'link-local';
}

export const IPV4_SPECIAL: readonly SpecialBlock[] = [
  { block: '0.0.0.0/8', name: '"This network"', rfc: 'RFC791', reachable: false },
  { block: '0.0.0.0/32', name: '"This host on this network"', rfc: 'RFC1122', reachable: false },
  { block: '10.0.0.0/8', name: 'Private-Use', rfc: 'RFC1918', reachable: false, guard: 'private' },
  {
    block: '100.64.0.0/10',
    name: 'Shared Address Space',
    rfc: 'RFC6598',
    reachable: false,
    guard: 'private',
  },
  { block: '127.0.0.0/8', name: 'Loopback', rfc: 'RFC1122', reachable: false, guard: 'loopback' },
  { block: '169.254.0.0/16', name: 'Link Local', rfc: 'RFC3927', reachable: false, guard: 'link-local' },
  { block: '172.16.0.0/12', name: 'Private-Use', rfc: 'RFC1918', reachable: false, guard: 'private' },
  { block: '192.0.0.0/24', name: 'IETF Protocol Assignments', rfc: 'RFC6890', reachable: false },
  { block: '192.0.0.0/29', name: 'IPv4 Service Continuity Prefix', rfc: 'RFC7335', reachable: false },
  { block: '192.0.0.8/32', name: 'IPv4 dummy address', rfc: 'RFC7600', reachable: false },
  { block: '192.0.0.9/32', name: 'Port Control Protocol Anycast', rfc: 'RFC7723', reachable: true },
  {
    block: '192.0.0.10/32',
    name: 'Traversal Using Relays around NAT Anycast',
    rfc: 'RFC8155',
    reachable: true,
  },
  { block: '192.0.0.170/32', name: 'NAT64/DNS64 Discovery', rfc: 'RFC8880', reachable: false },
  { block: '192.0.0.171/32', name: 'NAT64/DNS64 Discovery', rfc: 'RFC8880', reachable: false },
  { block: '192.0.2.0/24', name: 'Documentation (TEST-NET-1)', rfc: 'RFC5737', reachable: false },
  { block: '192.31.196.0/24', name: 'AS112-v4', rfc: 'RFC7535', reachable: true },
  { block: '192.52.193.0/24', name: 'AMT', rfc: 'RFC7450', reachable: true },
  { block: '192.88.99.0/24', name: 'Deprecated (6to4 Relay Anycast)', rfc: 'RFC7526', reachable: '' },
  { block: '192.88.99.2/32', name: '6a44-relay anycast address', rfc: 'RFC6751', reachable: false },
  { block: '192.168.0.0/16', name: 'Private-Use', rfc: 'RFC1918', reachable: false, guard: 'private' },
  { block: '192.175.48.0/24', name: 'Direct Delegation AS112 Service', rfc: 'RFC7534', reachable: true },
  { block: '198.18.0.0/15', name: 'Benchmarking', rfc: 'RFC2544', reachable: false },
  { block: '198.51.100.0/24', name: 'Documentation (TEST-NET-2)', rfc: 'RFC5737', reachable: false },
  { block: '203.0.113.0/24', name: 'Documentation (TEST-NET-3)', rfc: 'RFC5737', reachable: false },
  { block: '240.0.0.0/4', name: 'Reserved', rfc: 'RFC1112', reachable: false },
  { block: '255.255.255.255/32', name: 'Limited Broadcast', rfc: 'RFC8190', reachable: false },
];

export const IPV6_SPECIAL: readonly SpecialBlock[] = [
  { block: '::1/128', name: 'Loopback Address', rfc: 'RFC4291', reachable: false, guard: 'loopback' },
  { block: '::/128', name: 'Unspecified Address', rfc: 'RFC4291', reachable: false },
  { block: '::ffff:0:0/96', name: 'IPv4-mapped Address', rfc: 'RFC4291', reachable: false },
  { block: '64:ff9b::/96', name: 'IPv4-IPv6 Translat.', rfc: 'RFC6052', reachable: true },
  { block: '64:ff9b:1::/48', name: 'IPv4-IPv6 Translat.', rfc: 'RFC8215', reachable: false },
  { block: '100::/64', name: 'Discard-Only Address Block', rfc: 'RFC6666', reachable: false },
  { block: '100:0:0:1::/64', name: 'Dummy IPv6 Prefix', rfc: 'RFC9780', reachable: false },
  { block: '2001::/23', name: 'IETF Protocol Assignments', rfc: 'RFC2928', reachable: false },
  { block: '2001::/32', name: 'TEREDO', rfc: 'RFC4380', reachable: 'N/A' },
  { block: '2001:1::1/128', name: 'Port Control Protocol Anycast', rfc: 'RFC7723', reachable: true },
  {
    block: '2001:1::2/128',
    name: 'Traversal Using Relays around NAT Anycast',
    rfc: 'RFC8155',
    reachable: true,
  },
  {
    block: '2001:1::3/128',
    name: 'DNS-SD Service Registration Protocol Anycast',
    rfc: 'RFC9665',
    reachable: true,
  },
  { block: '2001:2::/48', name: 'Benchmarking', rfc: 'RFC5180', reachable: false },
  { block: '2001:3::/32', name: 'AMT', rfc: 'RFC7450', reachable: true },
  { block: '2001:4:112::/48', name: 'AS112-v6', rfc: 'RFC7535', reachable: true },
  { block: '2001:10::/28', name: 'Deprecated (previously ORCHID)', rfc: 'RFC4843', reachable: '' },
  { block: '2001:20::/28', name: 'ORCHIDv2', rfc: 'RFC7343', reachable: true },
  {
    block: '2001:30::/28',
    name: 'Drone Remote ID Protocol Entity Tags (DETs) Prefix',
    rfc: 'RFC9374',
    reachable: true,
  },
  { block: '2001:db8::/32', name: 'Documentation', rfc: 'RFC3849', reachable: false },
  { block: '2002::/16', name: '6to4', rfc: 'RFC3056', reachable: 'N/A' },
  { block: '2620:4f:8000::/48', name: 'Direct Delegation AS112 Service', rfc: 'RFC7534', reachable: true },
  { block: '3fff::/20', name: 'Documentation', rfc: 'RFC9637', reachable: false },
  { block: '5f00::/16', name: 'Segment Routing (SRv6) SIDs', rfc: 'RFC9602', reachable: false },
  { block: 'fc00::/7', name: 'Unique-Local', rfc: 'RFC4193', reachable: false, guard: 'private' },
  { block: 'fe80::/10', name: 'Link-Local Unicast', rfc: 'RFC4291', reachable: false, guard: 'link-local' },
];

/**
 * Not in the special-purpose registries but never a metadata server: the
 * multicast blocks (IANA IPv4 Multicast Address Space, IPv6 Multicast Address
 * Space), the deprecated site-local block (IANA IPv6 Address Space, RFC 3879)
 * and the deprecated IPv4-compatible addresses (RFC 4291 section 2.5.5.1).
 */
export const NEVER_REACHED: readonly SpecialBlock[] = [
  { block: '224.0.0.0/4', name: 'Multicast', rfc: 'RFC5771', reachable: false },
  { block: 'ff00::/8', name: 'Multicast', rfc: 'RFC4291', reachable: false },
  { block: 'fec0::/10', name: 'Deprecated site-local', rfc: 'RFC3879', reachable: false },
  { block: '::/96', name: 'Deprecated IPv4-compatible', rfc: 'RFC4291', reachable: false },
];
