import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { UsageError } from '../errors.ts';
import type { GatewayKeyDir } from './gateway-keys.ts';

export interface MintRequest {
  readonly issuer: string;
  readonly audience: string;
  readonly sub: string;
  readonly workload?: string;
  /** Exposed tool names this token may call. */
  readonly tools: readonly string[];
  /** Exposed prompt names (`*` matches any run) this token may get and complete; none if left out. */
  readonly prompts?: readonly string[];
  /** Resource URI patterns (`*` matches any run) this token may read, subscribe to and complete; none if left out. */
  readonly resources?: readonly string[];
  readonly ttlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly reason: string;
  readonly nowSeconds: number;
  readonly newId?: () => string;
}

/** A gateway session token: EdDSA, short-lived, naming exactly the tools, prompts and resources it may use. */
export async function mintGatewayToken(
  keys: GatewayKeyDir,
  req: MintRequest,
): Promise<{ token: string; jti: string; exp: number; kid: string }> {
  if (req.ttlSeconds <= 0 || req.ttlSeconds > req.maxTtlSeconds)
    throw new UsageError(`--ttl must be between 1s and the configured maximum of ${req.maxTtlSeconds}s`);
  if (req.reason.trim() === '') throw new UsageError('--reason must not be empty');
  const jti = (req.newId ?? randomUUID)();
  const exp = req.nowSeconds + req.ttlSeconds;
  const { kid, key } = keys.signingKey();
  const token = await new SignJWT({
    allowed_tools: [...req.tools],
    allowed_prompts: [...(req.prompts ?? [])],
    allowed_resources: [...(req.resources ?? [])],
    reason: req.reason,
    ...(req.workload ? { client_id: req.workload } : {}),
  })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
    .setIssuer(req.issuer)
    .setSubject(req.sub)
    .setAudience(req.audience)
    .setIssuedAt(req.nowSeconds)
    .setExpirationTime(exp)
    .setJti(jti)
    .sign(key);
  return { token, jti, exp, kid };
}

/** `10m`, `90s`, `1h`, `2d`, or plain seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`not a duration: ${text} (use e.g. 90s, 10m, 1h)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}
