import { z } from 'zod';
import { adminSchema } from '../admin/config.ts';
import { approvalsSchema } from '../approval/config.ts';
import { attestSchema } from '../attest/config.ts';
import { auditSchema } from '../audit/config.ts';
import { credentialPlacementIssues, credentialsSchema } from '../credentials/config.ts';
import { identitySchema, upstreamMtlsSchema } from '../identity/config.ts';
import { DEFAULT_MAX_JSON_DEPTH } from '../jsonrpc.ts';
import { policySchema } from '../policy/config.ts';
import { protectSchema } from '../protect/config.ts';
import { sandboxSettingSchema } from '../sandbox/config.ts';
import { serverPinSchema } from '../serverpin/config.ts';
import { stateSchema } from '../state/config.ts';
import { isolationSchema, limitsSchema, poisoningSchema } from '../upstream/config.ts';
import { isLoopbackHost } from './loopback.ts';

/** `env:NAME` or `file:PATH`: secrets are referenced, never written into the config. */
export const secretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'must be a reference: env:NAME or file:PATH')
  .describe('Secret reference: env:NAME or file:PATH');

/** A value that may be a plain string or a secret reference. */
const valueOrRef = z.string().describe('Plain value, or a reference env:NAME / file:PATH');

const upstreamName = z
  .string()
  .regex(
    /^[a-z][a-z0-9_-]{0,31}$/,
    'must be lowercase ASCII letters, digits, "_" or "-", starting with a letter',
  )
  .refine((s) => !s.includes('__'), 'must not contain "__" (the tool-name separator)');

const upstreamCommon = {
  /** Prefix for tool and prompt names; "" exposes names unprefixed (one upstream only). */
  prefix: z
    .string()
    .regex(/^([a-z][a-z0-9_-]{0,31})?$/)
    .refine((s) => !s.includes('__'))
    .optional()
    .describe('Name prefix; defaults to the upstream name; "" means unprefixed'),
  timeoutMs: z.number().int().positive().max(600_000).default(30_000),
  /**
   * How long one upstream connection's tools/list answer is reused (pins still checked on each
   * list); never after the upstream announced a change. 0: every list asks the upstream.
   */
  toolListCacheMs: z
    .number()
    .int()
    .min(0)
    .max(3_600_000)
    .default(30_000)
    .describe(
      "How long an upstream connection's tools/list answer is reused, unless the upstream announces a change; 0 asks every time",
    ),
  isolation: isolationSchema,
  poisoning: poisoningSchema,
  /** What the upstream is given for each call; unset: nothing (and no ambient secret either). */
  credentials: credentialsSchema.optional(),
};

const stdioUpstream = z.strictObject({
  transport: z.literal('stdio'),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  cwd: z.string().optional(),
  /** The only variables the child sees (plus PATH and HOME); values may be references. */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), valueOrRef).default({}),
  restart: z
    .strictObject({
      initialDelayMs: z.number().int().positive().default(250),
      maxDelayMs: z.number().int().positive().default(30_000),
    })
    .prefault({}),
  /** Network, writable paths and limits under bubblewrap; left out: the default sandbox where available. */
  sandbox: sandboxSettingSchema,
  /** The hashes it must match to start; without one it is pinned on first use (state store). */
  pin: serverPinSchema.optional(),
  ...upstreamCommon,
});

const httpUpstream = z.strictObject({
  transport: z.literal('http'),
  url: z.url({ protocol: /^https?$/ }),
  /** Extra headers sent upstream; values must be secret references. */
  headers: z.record(z.string().regex(/^[A-Za-z0-9-]+$/), secretRef).default({}),
  /** mTLS with a pinned SPIFFE ID: the upstream proves who it is before any call. */
  mtls: upstreamMtlsSchema.optional(),
  ...upstreamCommon,
});

export const upstreamSchema = z.discriminatedUnion('transport', [stdioUpstream, httpUpstream]);

const listenSchema = z
  .strictObject({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9/_-]*$/)
      .default('/mcp'),
    /** Origins allowed besides the listener's own (loopback origins are always allowed on loopback). */
    allowedOrigins: z.array(z.string()).default([]),
    /** Host header values allowed besides the bound address. */
    allowedHosts: z.array(z.string()).default([]),
    maxBodyBytes: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024),
    /** Deepest nesting of arrays and objects in a message; deeper ones get -32600 and an audit record. */
    maxJsonDepth: z.number().int().min(8).max(1000).default(DEFAULT_MAX_JSON_DEPTH),
    sessionIdleMs: z
      .number()
      .int()
      .positive()
      .default(10 * 60_000),
    /**
     * How long a server-to-client request with no request to ride on (roots/list
     * at session start) waits for the client's GET stream before it fails.
     */
    clientStreamWaitMs: z.number().int().positive().max(60_000).default(5_000),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    $schema: z.string().optional(),
    listen: listenSchema,
    identity: identitySchema,
    state: stateSchema,
    upstreams: z
      .record(upstreamName, upstreamSchema)
      .refine((u) => Object.keys(u).length > 0, 'at least one upstream is required'),
    admin: adminSchema,
    log: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).prefault({}),
    audit: auditSchema.optional(),
    policy: policySchema,
    limits: limitsSchema,
    approvals: approvalsSchema,
    /** Secrets and personal data: detectors, scan bounds, masking of results. */
    protect: protectSchema,
    /** Signed results and caller-signed requests. */
    attest: attestSchema,
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, string>();
    for (const [name, up] of Object.entries(cfg.upstreams)) {
      const prefix = up.prefix ?? name;
      const other = seen.get(prefix);
      if (other !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', name, 'prefix'],
          message: `prefix "${prefix}" is already used by upstream "${other}"`,
        });
      }
      seen.set(prefix, name);
      for (const issue of credentialPlacementIssues(up)) {
        ctx.addIssue({ code: 'custom', path: ['upstreams', name, ...issue.path], message: issue.message });
      }
    }
    if (cfg.identity.mode === 'none' && !isLoopbackHost(cfg.listen.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['identity', 'mode'],
        message: `an open gateway (identity.mode: none) may only listen on loopback, not ${cfg.listen.host}`,
      });
    }
    if (cfg.identity.mode === 'none' && cfg.admin.enabled && !isLoopbackHost(cfg.admin.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['admin', 'host'],
        message: `the admin listener may only listen off loopback (${cfg.admin.host}) when callers are identified (identity.mode: token)`,
      });
    }
    for (const name of Object.keys(cfg.protect.mask.upstreams)) {
      if (cfg.upstreams[name]) continue;
      ctx.addIssue({
        code: 'custom',
        path: ['protect', 'mask', 'upstreams', name],
        message: `no upstream is named "${name}"`,
      });
    }
    if (seen.has('') && Object.keys(cfg.upstreams).length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['upstreams'],
        message: 'an unprefixed upstream (prefix: "") must be the only upstream',
      });
    }
  });

export type Config = z.infer<typeof configSchema>;
export type UpstreamConfig = z.infer<typeof upstreamSchema>;
export type StdioUpstreamConfig = z.infer<typeof stdioUpstream>;
export type HttpUpstreamConfig = z.infer<typeof httpUpstream>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' });
}
