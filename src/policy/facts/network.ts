import type { DownstreamSession } from '../../session.ts';

export interface NetworkFacts {
  address: string;
  transport: string;
}

/** Where the caller is: the HTTP peer, or (stdio) a local process given the loopback address. */
export const networkOf = (session: DownstreamSession): NetworkFacts => networkFacts(session.remoteAddress);

/** The facts for a peer address (undefined: a local stdio process). */
export function networkFacts(address: string | undefined): NetworkFacts {
  return address === undefined
    ? { address: '127.0.0.1', transport: 'stdio' }
    : { address: stripMapped(address), transport: 'http' };
}

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) as the IPv4 address policies are written for. */
const stripMapped = (address: string): string => address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
