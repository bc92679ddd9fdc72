import { BlockList, isIP } from 'node:net';
import { IPV4_SPECIAL, IPV6_SPECIAL, NEVER_REACHED, type SpecialBlock } from './special-addresses.ts';

export interface AddressRules {
  /** 127/8 and ::1. */
  readonly allowLoopback: boolean;
  /** RFC 1918, shared (100.64/10), unique-local and link-local blocks. */
  readonly allowPrivate: boolean;
}

type Family = 'ipv4' | 'ipv6';

interface CompiledBlock {
  readonly row: SpecialBlock;
  readonly family: Family;
  readonly bits: number;
  readonly list: BlockList;
}

/** Most specific first, so a reachable block inside a larger unreachable one wins. */
const BLOCKS: readonly CompiledBlock[] = [...IPV4_SPECIAL, ...IPV6_SPECIAL, ...NEVER_REACHED]
  .map((row) => {
    const [net, bits] = row.block.split('/') as [string, string];
    const family: Family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
    const list = new BlockList();
    list.addSubnet(net, Number(bits), family);
    return { row, family, bits: Number(bits), list };
  })
  .sort((a, b) => b.bits - a.bits);

const GLOBAL_UNICAST = new BlockList();
GLOBAL_UNICAST.addSubnet('2000::', 3, 'ipv6');

/** The special-purpose block an address falls in, most specific first. */
export function specialBlockOf(address: string): SpecialBlock | undefined {
  const family: Family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  return BLOCKS.find((b) => b.family === family && b.list.check(address, family))?.row;
}

/**
 * Why a metadata or JWKS fetch may not connect to `address`, or undefined when
 * it may. Refused: every block the IANA registries do not mark globally
 * reachable (loopback and private ones unless the rules allow them), multicast,
 * site-local, IPv6 outside 2000::/3 that no registry row names, and addresses
 * that carry an IPv4 one: IPv4-mapped ones are judged as that IPv4 address;
 * NAT64 (64:ff9b::/96) and 6to4 (2002::/16) ones only reach a globally
 * reachable IPv4 address; Teredo and IPv4-compatible ones never.
 */
export function addressRefusal(raw: string, rules: AddressRules): string | undefined {
  const address = raw.split('%')[0]!;
  const kind = isIP(address);
  if (kind === 0) return 'not an IP address';
  if (kind === 6) {
    const embedded = embeddedIpv4(address);
    if (embedded?.via === 'mapped') return addressRefusal(embedded.ipv4, rules);
    if (embedded) {
      const inner = addressRefusal(embedded.ipv4, { allowLoopback: false, allowPrivate: false });
      if (inner) return `${embedded.via} address embedding a ${inner}`;
    }
  }
  const row = specialBlockOf(address);
  if (!row) {
    if (kind === 6 && !GLOBAL_UNICAST.check(address, 'ipv6')) return 'reserved IPv6 address';
    return undefined;
  }
  if (row.reachable === true) return undefined;
  if (row.guard === 'loopback') return rules.allowLoopback ? undefined : 'loopback address';
  if (row.guard === 'link-local') return rules.allowPrivate ? undefined : 'link-local address';
  if (row.guard === 'private') return rules.allowPrivate ? undefined : 'private address';
  if (row.block === '2001::/32') return 'Teredo address';
  if (row.block === '2002::/16') return undefined;
  return `special-purpose address (${row.name}, ${row.block})`;
}

/** Whether an address is loopback (127/8, ::1, or IPv4-mapped 127/8). */
export function isLoopback(raw: string): boolean {
  const address = raw.split('%')[0]!;
  const embedded = isIP(address) === 6 ? embeddedIpv4(address) : undefined;
  const plain = embedded?.via === 'mapped' ? embedded.ipv4 : address;
  return specialBlockOf(plain)?.guard === 'loopback';
}

type Via = 'mapped' | 'NAT64' | '6to4';

/** The IPv4 address inside an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address. */
function embeddedIpv4(address: string): { via: Via; ipv4: string } | undefined {
  const h = hextets(address);
  if (!h) return undefined;
  const quad = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zeros = (from: number, to: number) => h.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && h[5] === 0xffff) return { via: 'mapped', ipv4: quad(h[6]!, h[7]!) };
  if (h[0] === 0x64 && h[1] === 0xff9b && zeros(2, 6)) return { via: 'NAT64', ipv4: quad(h[6]!, h[7]!) };
  if (h[0] === 0x2002) return { via: '6to4', ipv4: quad(h[1]!, h[2]!) };
  return undefined;
}

/** The eight 16-bit groups of an IPv6 address (dotted-quad tail included). */
function hextets(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const fill = tail === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...new Array<number>(fill).fill(0), ...right];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff)
    ? groups
    : undefined;
}
