import { createHash } from 'node:crypto';
import { isDeepFrozen } from '../../freeze.ts';
import { isObject, type JsonObject } from '../../jsonrpc.ts';
import type { PolicyConfig, Tier } from '../config.ts';
import { type CedarType, inputRecordType } from './cedar-types.ts';

export interface Annotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ToolDef {
  /** The exposed name (`fs__read_file`). */
  readonly name: string;
  readonly upstream: string;
  readonly inputSchema: JsonObject;
  readonly input: Extract<CedarType, { type: 'Record' }>;
  /** As listed, with MCP's defaults filled in for the absent ones. */
  readonly annotations: Annotations;
  readonly tier: Tier;
  readonly egress: boolean;
}

/** MCP's defaults for absent hints: assume the worst. */
const DEFAULT_HINTS: Annotations = {
  readOnlyHint: false,
  destructiveHint: true,
  idempotentHint: false,
  openWorldHint: true,
};
const TIER_RANK: Record<Tier, number> = { read: 0, 'read-sensitive': 1, write: 2 };
const SAFE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
const EGRESS_WORDS =
  /(^|_|-)(send|post|upload|publish|email|mail|webhook|http|fetch|push|share|message|notify)/i;

/**
 * The tools, resources and prompts upstreams have listed, as policy sees them.
 * Fed by every list the aggregator makes; `version` moves when anything changed,
 * so the policy schema is regenerated and the policies re-validated.
 */
export class Catalog {
  private readonly cfg: PolicyConfig;
  private readonly tools = new Map<string, ToolDef>();
  private readonly fingerprints = new Map<string, string>();
  /** The listed item each tool was last learned from. */
  private readonly learned = new Map<string, JsonObject>();
  /** Names refused: non-ASCII, or colliding with another after normalisation. */
  private readonly refused = new Set<string>();
  version = 0;

  constructor(cfg: PolicyConfig) {
    this.cfg = cfg;
  }

  tool(name: string): ToolDef | undefined {
    return this.refused.has(name) ? undefined : this.tools.get(name);
  }

  allTools(): ToolDef[] {
    return [...this.tools.values()].filter((t) => !this.refused.has(t.name));
  }

  isRefused(name: string): boolean {
    return this.refused.has(name) || !SAFE_NAME.test(name);
  }

  /** Records the tools one upstream listed (exposed names); returns whether anything changed. */
  updateTools(upstream: string, items: readonly JsonObject[]): boolean {
    let changed = false;
    for (const item of items) {
      // The very item learned last time, deep-frozen (a kept listing's): nothing in it can differ.
      if (isDeepFrozen(item) && this.learned.get(String(item.name)) === item) continue;
      const name = String(item.name);
      if (!SAFE_NAME.test(name)) continue;
      this.learned.set(name, item);
      const fingerprint = fingerprintOf(upstream, item);
      if (this.fingerprints.get(name) === fingerprint) continue;
      this.fingerprints.set(name, fingerprint);
      this.tools.set(name, this.define(upstream, name, item));
      changed = true;
    }
    if (changed) {
      this.recomputeCollisions();
      this.version++;
    }
    return changed;
  }

  private define(upstream: string, name: string, item: JsonObject): ToolDef {
    const listed = isObject(item.annotations) ? item.annotations : {};
    const annotations = { ...DEFAULT_HINTS };
    for (const key of Object.keys(DEFAULT_HINTS) as (keyof Annotations)[]) {
      if (typeof listed[key] === 'boolean') annotations[key] = listed[key];
    }
    const inputSchema = isObject(item.inputSchema) ? item.inputSchema : {};
    return {
      name,
      upstream,
      inputSchema,
      input: inputRecordType(inputSchema),
      annotations,
      tier: tierOf(name, this.cfg, this.cfg.trustAnnotations.includes(upstream), listed),
      egress:
        listed.openWorldHint === true ||
        EGRESS_WORDS.test(name.split('__').at(-1)!) ||
        this.cfg.egress.includes(name),
    };
  }

  private recomputeCollisions(): void {
    this.refused.clear();
    const byKey = new Map<string, string>();
    for (const name of this.tools.keys()) {
      const key = normalise(name);
      const other = byKey.get(key);
      if (other !== undefined) {
        this.refused.add(name);
        this.refused.add(other);
      } else byKey.set(key, name);
    }
  }
}

/** Names that differ only in case or in `-`/`.`/`_` would mislead a reader of policies and logs. */
export const normalise = (name: string): string => name.toLowerCase().replace(/[-.]/g, '_');

/**
 * Config first, else annotations (only from an upstream trusted for them), else
 * `write`; then any explicit hint that the tool writes or reaches out makes it `write`.
 */
export function tierOf(name: string, cfg: PolicyConfig, trusted: boolean, listed: JsonObject): Tier {
  let tier: Tier = cfg.tiers[name] ?? (trusted && listed.readOnlyHint === true ? 'read' : 'write');
  const writes =
    listed.readOnlyHint === false || listed.destructiveHint === true || listed.openWorldHint === true;
  if (writes && TIER_RANK[tier] < TIER_RANK.write) tier = 'write';
  return tier;
}

function fingerprintOf(upstream: string, item: JsonObject): string {
  return createHash('sha256')
    .update(JSON.stringify([upstream, item.inputSchema ?? null, item.annotations ?? null]))
    .digest('base64url');
}
