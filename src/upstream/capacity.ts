import { overCapacity } from '../errors.ts';

/** Legacy sessions held open per caller, bounded: one more than the cap is refused, never queued. */
export class SessionQuota {
  private readonly max: number;
  private readonly byPrincipal = new Map<string, Set<string>>();
  private readonly owners = new Map<string, string>();

  constructor(max: number) {
    this.max = max;
  }

  /** Counts session `key` against `principal`; throws ERR_CAPACITY when the caller is at the cap. */
  admit(key: string, principal: string): void {
    if (this.owners.has(key)) return;
    const held = this.byPrincipal.get(principal) ?? new Set<string>();
    if (held.size >= this.max) throw overCapacity(`${held.size} sessions held by ${principal}`);
    held.add(key);
    this.byPrincipal.set(principal, held);
    this.owners.set(key, principal);
  }

  release(key: string): void {
    const principal = this.owners.get(key);
    if (principal === undefined) return;
    this.owners.delete(key);
    const held = this.byPrincipal.get(principal);
    held?.delete(key);
    if (held?.size === 0) this.byPrincipal.delete(principal);
  }

  held(principal: string): number {
    return this.byPrincipal.get(principal)?.size ?? 0;
  }
}
