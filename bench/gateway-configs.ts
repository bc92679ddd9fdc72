/**
 * Gateway configs of the benchmark's Portcullis targets, one function per
 * variant. Each takes `{ name, upstream, port, fx }` (the target's name, its
 * upstream section, the port it will listen on, the shared fixtures) and
 * returns `{ config, controls, clientHeaders }`: the config object (written as
 * JSON, which is YAML), the controls it switches on (printed in the report),
 * and the headers every bench caller sends (the bearer token).
 *
 * `npm run bench -- --check-configs` writes every variant and runs
 * `portcullis config check` on it. A variant may only contain sections the
 * current schema (src/config/schema.ts) accepts; add result signing and
 * credential minting here as they land.
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const PERMIT_ALL = path.join(ROOT, 'policies', 'permit-all-FOR-TESTS-ONLY.cedar');
/** The test database of this machine (trust auth); BENCH_PG_URL overrides. */
const PG_URL = process.env.BENCH_PG_URL || 'postgres://postgres@127.0.0.1:5432/test';
/** The echo tool as the gateway exposes it, and the scope the bench token carries for it. */
const TOOL = 'echo__echo';
const SCOPE = 'echo:call';
/** The checkout whose gateway the targets run (BENCH_GATEWAY_ROOT, else this one). */
const GATEWAY_ROOT = path.resolve(process.env.BENCH_GATEWAY_ROOT || ROOT);
/**
 * BENCH_FEATURES=base: run this checkout's full pipeline with only the controls
 * a base commit of issue 13 had (no masking and detectors, no minted JWT, no
 * result signing), for a like-for-like comparison with it in one harness.
 */
const LIKE_BASE = process.env.BENCH_FEATURES === 'base';
/**
 * BENCH_FEATURES=no-protect: the full pipeline with every detector off (no
 * secret rules, no PII types), so no argument or result is scanned: against
 * a run without it, what data protection adds to a call.
 */
const NO_PROTECT = process.env.BENCH_FEATURES === 'no-protect';
/**
 * Each control the full pipeline gains since then, when the gateway that runs
 * has it: a base commit from before it gets the pipeline without that section
 * (its config and policy schemas would refuse it).
 */
const has = (...file: string[]): boolean => fs.existsSync(path.join(GATEWAY_ROOT, 'src', ...file));
/** Secret and PII detectors on arguments, and masking of results. */
const DATA_PROTECTION = !LIKE_BASE && !NO_PROTECT && has('protect');
/** A JWT minted per call for the HTTP upstream. */
const CREDENTIALS = !LIKE_BASE && has('credentials', 'broker.ts');
/** Results signed; on by default where the gateway has it, so like-for-like turns it off. */
const HAS_ATTEST = has('attest');
const ATTESTATION = !LIKE_BASE && HAS_ATTEST;
/** Durability modes (issue 17): a gateway from before them fsyncs every record, which is today's `record`. */
const HAS_DURABILITY = fs
  .readFileSync(path.join(GATEWAY_ROOT, 'src', 'audit', 'config.ts'), 'utf8')
  .includes('durability');
const AUDIT_CONTROL = HAS_DURABILITY
  ? "audit SQLite WAL, durability record (the default: each record on stable storage before its step; the decision shares the lease record's commit and fsync), group commit"
  : 'audit SQLite WAL+FULL, group commit';

/** What every variant is given: the target's name, its upstream section, its port, the shared fixtures. */
export interface VariantInput {
  name: string;
  upstream: object;
  port: number;
  fx: Fixtures;
}

/** A variant's config (written as JSON, which is YAML), the controls it switches on, the callers' headers. */
export interface Variant {
  config: GatewayConfig;
  controls: string[];
  clientHeaders: Record<string, string>;
}

/** The sections of a gateway config the variants write (checked by `portcullis config check`, not here). */
type GatewayConfig = Record<string, unknown> & { audit: Record<string, unknown> };

/** Everything the variants share, from `prepareFixtures`. */
export type Fixtures = Awaited<ReturnType<typeof prepareFixtures>>;

// ---------------------------------------------------------------------------
// The variants
// ---------------------------------------------------------------------------

/**
 * Every control that has landed, switched on: bearer JWT identity (an ES256
 * token from an external issuer, keys fetched from its JWKS), the revocation
 * check on every call, argument validation, the secret and PII detectors on
 * the arguments (the set reads `context.detected`), a Cedar decision over a
 * realistic set of 100 policies, every result scanned and redacted, the
 * audit log appended durably to SQLite (WAL, FULL sync, group commit) with
 * canonical hashing and HMAC of argument values, and (HTTP upstream) a JWT
 * minted per call, its lease recorded before the call goes out.
 */
export function fullPipelineConfig({ name, upstream, port, fx }: VariantInput): Variant {
  const resource = resourceOf(port);
  // An HTTP upstream is handed a JWT minted per call (the credentials stage): a stdio one has no header to carry it.
  const minted = CREDENTIALS && (upstream as { transport?: string }).transport === 'http';
  return {
    config: {
      ...base(minted ? { ...upstream, credentials: { kind: 'minted-jwt' } } : upstream, port),
      identity: tokenIdentity(resource, fx),
      state: { store: 'sqlite', path: path.join(fx.dir, name, 'state.db') },
      policy: { files: [fx.policies100], tiers: { [TOOL]: 'read' } },
      audit: sqliteAudit(fx, name),
      // Every result of the read tier masked, whatever the decision says.
      ...(DATA_PROTECTION ? { protect: { mask: { tiers: { read: 'redact' } } } } : {}),
      ...(NO_PROTECT && has('protect') ? { protect: { detectors: { secrets: false, pii: [] } } } : {}),
      // Every result signed (the default), its keys beside the variant's other files.
      ...(ATTESTATION ? { attest: { keyDir: path.join(fx.dir, name, 'attest-keys') } } : {}),
      ...(HAS_ATTEST && !ATTESTATION ? { attest: { results: false } } : {}),
    },
    controls: [
      'JWT ES256 (external issuer, JWKS)',
      'revocation (SQLite)',
      'argument validation',
      ...(DATA_PROTECTION ? ['secret and PII detectors on arguments (context.detected)'] : []),
      'Cedar, 100 policies',
      ...(DATA_PROTECTION ? ['masking: every result scanned and redacted'] : []),
      ...(minted ? ['minted JWT per call (EdDSA, lease recorded in the audit log)'] : []),
      ...(ATTESTATION ? ['result attestation (Ed25519 detached JWS)'] : []),
      AUDIT_CONTROL,
    ],
    clientHeaders: { authorization: `Bearer ${fx.mintToken(resource)}` },
  };
}

/** The full pipeline in durability mode overlap: the decision's flush during the round trip, the answer held for both. */
export function fullPipelineOverlapConfig(input: VariantInput): Variant {
  const full = fullPipelineConfig(input);
  if (!HAS_DURABILITY) return full;
  return {
    ...full,
    config: { ...full.config, audit: { ...full.config.audit, durability: { mode: 'overlap' } } },
    controls: full.controls.map((c) =>
      c === AUDIT_CONTROL
        ? 'audit SQLite WAL, durability overlap (answer held until both records are on disk), group commit'
        : c,
    ),
  };
}

/** The full pipeline with revocations and the audit log in PostgreSQL (what replicas share). */
export function fullPipelinePostgresConfig({ name, upstream, port, fx }: VariantInput): Variant {
  const full = fullPipelineConfig({ name, upstream, port, fx });
  const prefix = fx.pgPrefix(name);
  return {
    ...full,
    config: {
      ...full.config,
      state: { store: 'postgres', url: PG_URL, prefix },
      audit: { ...full.config.audit, store: 'postgres', url: PG_URL, table: `${prefix}_audit` },
    },
    controls: full.controls.map((c) =>
      c.startsWith('revocation')
        ? 'revocation (PostgreSQL)'
        : c.startsWith('audit')
          ? 'audit PostgreSQL, group commit'
          : c,
    ),
  };
}

/** Identity and audit on, a policy that permits everything: what the always-on stages cost. */
export function passThroughConfig({ name, upstream, port, fx }: VariantInput): Variant {
  const resource = resourceOf(port);
  return {
    config: {
      ...base(upstream, port),
      identity: tokenIdentity(resource, fx),
      state: { store: 'sqlite', path: path.join(fx.dir, name, 'state.db') },
      policy: { files: [PERMIT_ALL], tiers: { [TOOL]: 'read' } },
      audit: sqliteAudit(fx, name),
    },
    controls: [
      'JWT ES256 (external issuer, JWKS)',
      'revocation (SQLite)',
      'argument validation',
      'Cedar, permit-all',
      'result attestation (Ed25519)',
      AUDIT_CONTROL,
    ],
    clientHeaders: { authorization: `Bearer ${fx.mintToken(resource)}` },
  };
}

/** The least the gateway accepts: an open loopback gateway (no identity), permit-all, audit on. */
export function openGatewayConfig({ name, upstream, port, fx }: VariantInput): Variant {
  return {
    config: {
      ...base(upstream, port),
      identity: { mode: 'none' },
      state: { store: 'sqlite', path: path.join(fx.dir, name, 'state.db') },
      policy: { files: [PERMIT_ALL], tiers: { [TOOL]: 'read' } },
      audit: sqliteAudit(fx, name),
    },
    controls: [
      'no identity (open, loopback)',
      'argument validation',
      'Cedar, permit-all',
      'result attestation (Ed25519)',
      'audit SQLite',
    ],
    clientHeaders: {},
  };
}

/**
 * The config for `--instructions`: checkpoints every 256 entries only, not also
 * every second. Under callgrind the gateway runs some 50 times slower, so a
 * timer would sign a checkpoint every few calls instead of about every 128 as
 * at full speed, and the count per call would depend on how fast the machine is.
 */
export function checkpointsByCount(config: GatewayConfig): GatewayConfig {
  return {
    ...config,
    audit: { ...config.audit, checkpoint: { everyEntries: 256, everyMs: 86_400_000 } },
    // The break-glass windows are read from the state store every second: as many reads per call as the
    // slowed gateway takes seconds, which differed by several hundred thousand instructions per call
    // between two runs of one checkout. Once a minute is next to nothing either way.
    approvals: { breakGlass: { refreshMs: 60_000 } },
  };
}

// ---------------------------------------------------------------------------
// Sections the variants share
// ---------------------------------------------------------------------------

/** Listener and admin settings every variant shares: loopback, metrics on. */
function base(upstream: object, port: number) {
  return {
    listen: { host: '127.0.0.1', port },
    admin: { enabled: true, host: '127.0.0.1', port: 0 },
    upstreams: { echo: upstream },
    // Every virtual caller of the bench holds a session with the same token: the per-caller cap (16) would refuse 32.
    limits: { sessionsPerPrincipal: 256 },
  };
}

const resourceOf = (port: number) => `http://127.0.0.1:${port}/mcp`;

function tokenIdentity(resource: string, fx: Fixtures) {
  return {
    mode: 'token',
    resource,
    issuers: [
      {
        issuer: fx.issuer,
        discovery: 'none',
        jwksUri: `${fx.issuer}/jwks.json`,
        algorithms: ['ES256'],
        requiredScopes: [SCOPE],
      },
    ],
    fetch: { allowLoopback: true },
  };
}

/** A fresh SQLite audit log per target in the run's temp dir; keys are generated beside it. */
function sqliteAudit(fx: Fixtures, name: string) {
  return {
    store: 'sqlite',
    path: path.join(fx.dir, name, 'audit.db'),
    groupCommit: { enabled: true },
  };
}

// ---------------------------------------------------------------------------
// Fixtures: an issuer with its JWKS on loopback, tokens, the policy set, DB names
// ---------------------------------------------------------------------------

/** Everything the variants share, prepared once per run in `dir` (deleted by the bench on exit). */
export async function prepareFixtures(dir: string) {
  fs.mkdirSync(dir, { recursive: true });
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `bench-${randomBytes(4).toString('hex')}`;
  const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] };
  const server = http.createServer((req, res) => {
    if (req.url !== '/jwks.json') return res.writeHead(404).end();
    const body = JSON.stringify(jwks);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const policies100 = path.join(dir, 'policies-100.cedar');
  fs.writeFileSync(policies100, realisticPolicySet());
  const runTag = `bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  const pgPrefixes: string[] = [];
  return {
    dir,
    issuer,
    jwksServer: server,
    policies100,
    pgUrl: PG_URL,
    pgPrefixes,
    /** A unique table prefix for one target, dropped again by cleanupFixtures. */
    pgPrefix(name: string): string {
      const prefix = `${runTag}_${name.replace(/[^a-z0-9]/g, '_')}`.slice(0, 30);
      pgPrefixes.push(prefix);
      return prefix;
    },
    /** An ES256 access token for `resource`, valid for two hours. */
    mintToken(resource: string): string {
      return mintJwt(privateKey, kid, {
        iss: issuer,
        aud: resource,
        sub: 'bench-user',
        client_id: 'bench-agent',
        scope: `${SCOPE} tools:read`,
        groups: ['team-7', 'engineering'],
        reason: 'benchmark run',
        jti: randomBytes(12).toString('base64url'),
      });
    },
  };
}

/** Closes the JWKS server and drops the PostgreSQL tables the run created. */
export async function cleanupFixtures(fx: Fixtures): Promise<void> {
  fx.jwksServer.close();
  if (fx.pgPrefixes.length === 0) return;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: fx.pgUrl });
  await client.connect();
  try {
    for (const prefix of fx.pgPrefixes) {
      const { rows } = await client.query<{ tablename: string }>(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1 || '%'",
        [prefix],
      );
      for (const { tablename } of rows) await client.query(`DROP TABLE IF EXISTS "${tablename}" CASCADE`);
      const fns = await client.query<{ proname: string }>(
        "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace AND proname LIKE $1 || '%'",
        [prefix],
      );
      for (const { proname } of fns.rows) await client.query(`DROP FUNCTION IF EXISTS "${proname}" CASCADE`);
    }
  } finally {
    await client.end();
  }
}

function mintJwt(privateKey: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'ES256', typ: 'at+jwt', kid })}.${b64({ iat: now, nbf: now, exp: now + 7200, ...claims })}`;
  const key = createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }));
  const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/**
 * 100 policies shaped like an organisation's: the three-tier defaults, team
 * permits per upstream server, forbids on dangerous tools, risk rules per
 * contractor group, one permit that lets the bench caller use `echo__echo`.
 * Only a few of them apply to the bench call; the rest are what an engine
 * must skip (or slice away) on every decision.
 */
/**
 * `total` (100 by default) policies shaped like an organisation's; the shares of
 * team permits, tool guards and contractor rules stay those of the 100 (the
 * `--scale` run loads 10,000 of them). Below about a dozen only the general rules.
 */
export function realisticPolicySet(total = 100): string {
  const p: string[] = [];
  p.push(`@id("read-needs-identity-and-reason")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read" && principal.authenticated && context.reason != "" && principal.scopes.contains("tools:read") };`);
  p.push(`@id("read-sensitive-needs-scope-and-mask")
@obligation("mask")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "read-sensitive" && principal.authenticated && context.reason != "" && principal.scopes.contains("read:sensitive") };`);
  p.push(`@id("write-approved")
permit(principal, action in Action::"tools/call", resource is Tool)
when { resource.tier == "write" && principal.authenticated && context.approval.granted };`);
  p.push(`@id("read-resources-and-prompts")
permit(principal, action in [Action::"resources/read", Action::"prompts/get", Action::"completion/complete"], resource)
when { principal.authenticated && context.reason != "" };`);
  p.push(`@id("no-egress-after-sensitive-read")
forbid(principal, action in Action::"tools/call", resource is Tool)
when { context.session.sensitiveRead && (resource.tier == "write" || resource.egress) };`);
  if (DATA_PROTECTION) {
    p.push(`@id("no-secrets-to-writes-or-egress")
forbid(principal, action in Action::"tools/call", resource is Tool)
when { !context.detected.secrets.isEmpty() && (resource.tier == "write" || resource.egress) };`);
  }
  p.push(`@id("no-unauthenticated-callers")
forbid(principal, action, resource)
unless { principal.authenticated };`);
  p.push(`@id("risk-ceiling")
forbid(principal, action, resource)
when { context.risk >= 90 };`);
  p.push(`@id("bench-echo")
permit(principal in Group::"team-7", action in Action::"tools/call", resource == Tool::"${TOOL}")
when { principal.authenticated && principal.scopes.contains("${SCOPE}") && context.reason != "" };`);
  for (let k = 0; p.length < Math.round(total * 0.68); k++) {
    p.push(`@id("team-${k}-reads-svc${k}")
permit(principal in Group::"team-${k}", action in Action::"tools/call", resource in Server::"svc${k}")
when { resource.tier == "read" && context.reason != "" };`);
  }
  for (let k = 0; p.length < Math.round(total * 0.88); k++) {
    p.push(`@id("guard-svc${k}-delete")
forbid(principal, action in Action::"tools/call", resource == Tool::"svc${k}__delete_all")
unless { principal.scopes.contains("admin:svc${k}") && context.approval.granted };`);
  }
  for (let k = 0; p.length < total - 2; k++) {
    p.push(`@id("contractors-${k}-office-hours")
forbid(principal in Group::"contractors-${k}", action, resource)
unless { context.time.hour >= 8 && context.time.hour < 18 && context.risk < ${40 + k} };`);
  }
  p.push(`@id("ops-write-with-approval")
permit(principal in Group::"ops", action in Action::"tools/call", resource is Tool)
when { resource.tier == "write" && context.approval.granted && principal.scopes.contains("ops:write") };`);
  p.push(`@id("no-calls-to-quarantined-server")
forbid(principal, action, resource in Server::"quarantine");`);
  if (total >= 100 && p.length !== total) throw new Error(`policy set has ${p.length} policies`);
  return `// Generated by bench/gateway-configs.ts: ${p.length} policies, a few of which apply to the bench call.\n${p.join('\n\n')}\n`;
}
