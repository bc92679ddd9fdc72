import type { PolicySetChange } from '../audit/policy-set-records.ts';
import { ConfigError } from '../errors.ts';
import type { Principal } from '../identity/principal.ts';
import type { JsonObject } from '../jsonrpc.ts';
import type { Logger } from '../observability/log.ts';
import { type DetectedTypes, defaultProtection, NOTHING_DETECTED } from '../protect/service.ts';
import { isListMethod, listSpec } from '../protocol/methods.ts';
import type { PolicyConfig } from './config.ts';
import { type EngineDecision, PolicyEngine } from './engine/engine.ts';
import { loadPolicyFiles, type PolicySource } from './engine/policy-set.ts';
import { PolicyFileWatcher } from './engine/watch.ts';
import { PolicyError } from './errors.ts';
import type { NetworkFacts } from './facts/network.ts';
import {
  type CallFacts,
  type CedarRequest,
  type SessionSnapshot,
  type Target,
  toCedar,
} from './facts/request.ts';
import { MemorySessionFacts, type SessionFacts } from './facts/session-facts.ts';
import { Catalog } from './model/catalog.ts';

export interface ListedItem {
  readonly item: JsonObject;
  readonly upstream: string;
}

export interface PolicyServiceDeps {
  log: Logger;
  /** Told of every set that goes live and every refused reload, before any decision is made with it. */
  onSetChange: (change: PolicySetChange) => void;
  now?: () => number;
  facts?: SessionFacts;
  /** Tool definitions known up front (the CLI lists upstreams before loading policies). */
  catalog?: Catalog;
  /** What the detectors find in a call's arguments (`context.detected`); by default the built-in detectors. */
  detect?: (args: JsonObject) => DetectedTypes;
}

export interface ShadowStats {
  evaluated: number;
  differences: number;
}

/**
 * The live policy set (and an optional shadow candidate) over one catalog of
 * upstream tools. Swapping sets is one reference assignment: a call in flight
 * finishes on the set it started with, and nothing is dropped.
 */
export class PolicyService {
  readonly cfg: PolicyConfig;
  readonly catalog: Catalog;
  readonly facts: SessionFacts;
  readonly now: () => number;
  readonly shadowStats: ShadowStats = { evaluated: 0, differences: 0 };
  private readonly baseDir: string;
  private readonly log: Logger;
  private liveEngine: PolicyEngine;
  private shadowEngine: PolicyEngine | undefined;
  private watcher: PolicyFileWatcher | undefined;
  private readonly detector: ((args: JsonObject) => DetectedTypes) | undefined;
  private readonly onSetChange: (change: PolicySetChange) => void;

  constructor(cfg: PolicyConfig, baseDir: string, deps: PolicyServiceDeps) {
    this.cfg = cfg;
    this.baseDir = baseDir;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.facts = deps.facts ?? new MemorySessionFacts(cfg.session);
    this.catalog = deps.catalog ?? new Catalog(cfg);
    this.detector = deps.detect;
    this.onSetChange = deps.onSetChange;
    this.liveEngine = this.loadOrThrow(cfg.files, 'policy.files');
    if (cfg.shadow.length > 0) this.shadowEngine = this.loadOrThrow(cfg.shadow, 'policy.shadow');
    this.onSetChange({ event: 'loaded', live: this.liveEngine.source, shadow: this.shadowEngine?.source });
    if (cfg.files.length === 0) this.log.warn('no policy files: every call will be denied', {});
  }

  get live(): PolicyEngine {
    return this.liveEngine;
  }

  get shadow(): PolicyEngine | undefined {
    return this.shadowEngine;
  }

  /** Parses and validates (against the tools known so far); a start-up refusal carries the exact errors. */
  private loadOrThrow(files: readonly string[], where: string): PolicyEngine {
    try {
      return this.build(files);
    } catch (err) {
      if (err instanceof PolicyError) {
        throw new ConfigError(
          err.message,
          err.problems.map((message) => ({ path: where, message })),
          err,
        );
      }
      throw err;
    }
  }

  private build(files: readonly string[]): PolicyEngine {
    const source: PolicySource = loadPolicyFiles(files, this.baseDir);
    const engine = new PolicyEngine(source, this.catalog);
    const problems = engine.validate();
    if (problems.length > 0)
      throw new PolicyError('ERR_POLICY_INVALID', 'policies do not validate', problems);
    return engine;
  }

  /** Re-reads the files; a set that fails keeps the old one and says why. */
  reload(): { ok: true; hash: string } | { ok: false; problems: readonly string[] } {
    try {
      const next = this.build(this.cfg.files);
      const shadow = this.cfg.shadow.length > 0 ? this.build(this.cfg.shadow) : undefined;
      // Told first: the record of the set is on its way before any decision can name it.
      this.onSetChange({ event: 'reloaded', live: next.source, shadow: shadow?.source });
      this.liveEngine = next;
      this.shadowEngine = shadow;
      this.log.info('policy reloaded', {
        policySetHash: next.source.hash,
        policies: next.source.policies.length,
      });
      return { ok: true, hash: next.source.hash };
    } catch (err) {
      const problems = err instanceof PolicyError ? err.problems : [String(err)];
      this.onSetChange({
        event: 'refused',
        live: this.liveEngine.source,
        shadow: this.shadowEngine?.source,
        problems,
      });
      this.log.error('policy reload refused; the previous set stays live', {
        policySetHash: this.liveEngine.source.hash,
        problems,
      });
      return { ok: false, problems };
    }
  }

  /**
   * Hot reload whenever a policy file changes, however it is saved (in place,
   * by rename, by a symlink swap); every reload and every refused one is logged.
   */
  watch(): void {
    if (this.watcher) return;
    const files = [...this.liveEngine.source.files, ...(this.shadowEngine?.source.files ?? [])];
    this.watcher = new PolicyFileWatcher({ files, log: this.log, onChange: () => this.reload() });
    this.watcher.start();
    this.log.info('watching policy files', { files });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** Learns the tool definitions upstreams listed (every listing, whoever asked). */
  learnTools(items: readonly ListedItem[]): void {
    const byUpstream = new Map<string, JsonObject[]>();
    for (const { item, upstream } of items) {
      const list = byUpstream.get(upstream);
      if (list) list.push(item);
      else byUpstream.set(upstream, [item]);
    }
    let changed = false;
    for (const [upstream, list] of byUpstream) changed = this.catalog.updateTools(upstream, list) || changed;
    if (changed) this.revalidated();
  }

  /** Only the listed items this caller may use. */
  filterList(
    /** The set the list was authorized by: the one its decision record names. */
    engine: PolicyEngine,
    principal: Principal,
    method: string,
    items: readonly ListedItem[],
    network?: NetworkFacts,
  ): JsonObject[] {
    const now = this.now();
    return items
      .filter(({ item, upstream }) => {
        const target = listedTarget(this.catalog, method, item, upstream);
        if (!target) return false;
        const facts = this.facts.snapshot(principal.id, targetName(target), now);
        return engine.mayUse(
          toCedar(this.baseFacts(principal, methodFor(method), target, facts, now, network)),
        );
      })
      .map(({ item }) => item);
  }

  /** A tool schema changed under the live set: re-validate now, and say loudly if every call will be denied. */
  private revalidated(): void {
    const problems = this.liveEngine.validate();
    if (problems.length > 0) {
      this.log.error(
        'policies no longer validate against the upstream tools; every call is denied until fixed',
        {
          policySetHash: this.liveEngine.source.hash,
          problems,
        },
      );
    }
  }

  /** Whether the caller could use this target at all (otherwise it is reported as unknown). */
  mayUse(f: CallFacts): boolean {
    return this.liveEngine.mayUse(toCedar(f));
  }

  /** The live decision; the shadow set is evaluated beside it, and only counted and logged. */
  decide(f: CallFacts, callId = ''): EngineDecision {
    return this.decideRequest(toCedar(f), callId);
  }

  /** A request already in Cedar's terms (the admin API's actions), decided as `decide` does. */
  decideRequest(request: CedarRequest, callId = ''): EngineDecision {
    const live = this.liveEngine;
    const decision = live.decide(request);
    const shadow = this.shadowEngine;
    if (shadow) {
      try {
        const candidate = shadow.decide(request);
        this.shadowStats.evaluated++;
        if (
          candidate.effect !== decision.effect ||
          candidate.obligations.join() !== decision.obligations.join()
        ) {
          this.shadowStats.differences++;
          this.log.warn('shadow policy differs', {
            callId,
            live: {
              effect: decision.effect,
              policies: decision.determiningPolicies,
              obligations: decision.obligations,
            },
            shadow: {
              effect: candidate.effect,
              policies: candidate.determiningPolicies,
              obligations: candidate.obligations,
              policySetHash: candidate.policySetHash,
            },
          });
        }
      } catch (err) {
        this.log.warn('shadow policy failed', { callId, err: String(err) });
      }
    }
    return decision;
  }

  /**
   * `context.detected` for a call's arguments. Scanned only when the live or
   * shadow set reads it: a set that does not cannot decide differently.
   */
  detect(args: JsonObject): DetectedTypes {
    if (!this.liveEngine.readsContext('detected') && !this.shadowEngine?.readsContext('detected'))
      return NOTHING_DETECTED;
    return (this.detector ?? ((a) => defaultProtection().detect(a)))(args);
  }

  /** A call that matches a configured marker (or a read-sensitive tool) taints its caller's history. */
  isSensitive(target: Target, args: Record<string, unknown>): boolean {
    if (target.kind !== 'tool') return false;
    if (target.tool.tier === 'read-sensitive') return true;
    return this.cfg.sensitive.some((m) => {
      if (!glob(m.tool).test(target.tool.name)) return false;
      if (m.argument === undefined) return true;
      const v = args[m.argument];
      return typeof v === 'string' && (m.pattern === undefined || glob(m.pattern).test(v));
    });
  }

  baseFacts(
    principal: Principal,
    method: string,
    target: Target,
    session: SessionSnapshot,
    now: number,
    network: NetworkFacts = { address: '127.0.0.1', transport: 'stdio' },
  ): CallFacts {
    return {
      principal,
      method,
      target,
      input: {},
      reason: principal.reason ?? '',
      now,
      utcOffsetMinutes: this.cfg.utcOffsetMinutes,
      network,
      session,
      approval: { granted: false, breakGlass: false },
      request: { signed: false },
      detected: NOTHING_DETECTED,
    };
  }
}

export const targetName = (t: Target): string =>
  t.kind === 'tool' ? t.tool.name : t.kind === 'resource' ? t.uri : t.kind === 'prompt' ? t.name : t.server;

/** The call a listed item is for: an item is shown when the caller could make it. */
function methodFor(listMethod: string): string {
  return isListMethod(listMethod) ? listSpec(listMethod).callMethod : 'resources/read';
}

function listedTarget(
  catalog: Catalog,
  method: string,
  item: JsonObject,
  upstream: string,
): Target | undefined {
  if (method === 'tools/list') {
    const tool = catalog.tool(String(item.name));
    return tool && !catalog.isRefused(tool.name) ? { kind: 'tool', tool } : undefined;
  }
  if (method === 'prompts/list') return { kind: 'prompt', name: String(item.name), server: upstream };
  const uri = typeof item.uri === 'string' ? item.uri : String(item.uriTemplate);
  return { kind: 'resource', uri, server: upstream };
}

const globs = new Map<string, RegExp>();
/** `*` matches any run of characters; nothing else is special. */
export function glob(pattern: string): RegExp {
  let re = globs.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.split('*').map(escapeRegex).join('.*')}$`, 's');
    globs.set(pattern, re);
  }
  return re;
}
const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
