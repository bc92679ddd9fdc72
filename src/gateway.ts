import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { Announcer } from './approval/service.ts';
import { ApprovalService } from './approval/service.ts';
import { HeldCalls } from './approval/wakeups.ts';
import { WebhookNotifier } from './approval/webhooks.ts';
import { AttestationKeys, CurrentSigner, type ResultSigner } from './attest/keys.ts';
import { RequestSignatures } from './attest/request-signature.ts';
import { AuditService } from './audit/service.ts';
import { BreakGlass } from './breakglass/guard.ts';
import type { LoadedConfig } from './config/load.ts';
import { resolveValue } from './config/secrets.ts';
import { credentialBackends } from './credentials/backends.ts';
import { CredentialBroker } from './credentials/broker.ts';
import type { InstanceCredentials } from './credentials/instance.ts';
import { brokeredInstanceCredentials, postgresRoleBackends } from './credentials/instance-backends.ts';
import type { CredentialBackend } from './credentials/types.ts';
import { ConfigError, type PortcullisError } from './errors.ts';
import type { Principal } from './identity/principal.ts';
import { createIdentity, gatewayIssuer, gatewayKeyDir, type IdentityService } from './identity/service.ts';
import {
  isObject,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  snapshot,
} from './jsonrpc.ts';
import type { Logger } from './observability/log.ts';
import { Metrics } from './observability/metrics.ts';
import { Readiness } from './observability/readiness.ts';
import { PinEvents } from './pinning/events.ts';
import { PinStore } from './pinning/pins.ts';
import { ToolPins, upstreamPinning } from './pinning/tool-pins.ts';
import type { CallContext } from './pipeline/context.ts';
import { createPipeline, type Pipeline, type Stage } from './pipeline/runner.ts';
import { approvalStage } from './pipeline/stages/approval.ts';
import { attestStage } from './pipeline/stages/attest.ts';
import { auditDecisionStage, decisionStableStage } from './pipeline/stages/audit-decision.ts';
import { auditOutcomeStage } from './pipeline/stages/audit-outcome.ts';
import { authorizeStage } from './pipeline/stages/authorize.ts';
import { breakGlassStage } from './pipeline/stages/break-glass.ts';
import { credentialsStage } from './pipeline/stages/credentials.ts';
import { filterListStage } from './pipeline/stages/filter-list.ts';
import { forwardStage } from './pipeline/stages/forward.ts';
import { identifyStage } from './pipeline/stages/identify.ts';
import { inspectResultStage } from './pipeline/stages/inspect-result.ts';
import { maskStage } from './pipeline/stages/mask.ts';
import { metricsStage } from './pipeline/stages/metrics.ts';
import { paramHeadersStage } from './pipeline/stages/param-headers.ts';
import { parseStage } from './pipeline/stages/parse.ts';
import { requestSignatureStage } from './pipeline/stages/request-signature.ts';
import { routeStage } from './pipeline/stages/route.ts';
import { validateStage } from './pipeline/stages/validate.ts';
import { PolicyService } from './policy/service.ts';
import { DataProtection } from './protect/service.ts';
import { defaultSandboxHost, type SandboxHost } from './sandbox/host.ts';
import type { UpstreamSandbox } from './sandbox/launch.ts';
import { FileHasher } from './serverpin/digest.ts';
import { ServerPinEvents } from './serverpin/events.ts';
import { ServerPins } from './serverpin/service.ts';
import { ServerPinStore } from './serverpin/store.ts';
import type { DownstreamSession } from './session.ts';
import { DeferredRecordStore } from './state/deferred.ts';
import { openRecordStore } from './state/open.ts';
import type { RecordStore } from './state/records.ts';
import { Aggregator } from './upstream/aggregate.ts';
import { DEFAULT_POISONING_THRESHOLD } from './upstream/config.ts';
import type { RelatedSink } from './upstream/connection.ts';
import { exposeName } from './upstream/naming.ts';
import { UpstreamPool } from './upstream/pool.ts';
import { upstreamSandboxes } from './upstream/sandboxes.ts';
import { upstreamSpecs } from './upstream/spec.ts';
import { StdioStarts } from './upstream/starts.ts';

export interface GatewayDeps {
  log: Logger;
  now?: () => number;
  newId?: () => string;
  /** Stages that always run after a call (the audit stage attaches here). */
  terminal?: Stage[];
  /** The audit log; by default opened from the config's `audit` section. */
  audit?: AuditService;
  /** Caller identity; by default built from the config's `identity` section. */
  identity?: IdentityService;
  /** Approvals and break-glass windows shared by replicas; by default opened from the config's `state` section. */
  records?: RecordStore;
  /** Where approval events are announced; by default the webhooks of `approvals.webhooks`. */
  announcer?: Announcer;
  /** What this machine offers to sandbox stdio upstreams; by default probed once (bubblewrap). */
  sandboxHost?: SandboxHost;
}

/** Obligations a stage of this pipeline honours: `approval` and `confirm` (the approval stage), `mask` (the mask stage). */
const HONOURED: ReadonlySet<string> = new Set(['approval', 'confirm', 'mask']);
/** What an approved call's second decision may still carry. */
const HONOURED_AFTER_APPROVAL: ReadonlySet<string> = new Set(['confirm', 'mask']);
/** The shortest `protect.mask.hashKey` accepted, in bytes: shorter keys make hashed values guessable. */
const MIN_HASH_KEY_BYTES = 16;
/** How often expired approvals are ended (and recorded) by this replica. */
const SWEEP_MS = 5000;

/** How one call ended: the response to send, and the gateway's own error when a stage ended it. */
export interface CallResult {
  readonly response: JsonRpcResponse;
  /** Its `httpStatus` is what an HTTP listener answers with (the body stays the JSON-RPC error). */
  readonly error?: PortcullisError;
}

/**
 * The one place the system is wired: collaborators are built or given here,
 * and the stage list below is the whole story of a call.
 */
export class Gateway {
  readonly pool: UpstreamPool;
  /** Each stdio upstream's sandbox (and the egress proxy of an allowlist one). */
  private readonly sandboxes: ReadonlyMap<string, UpstreamSandbox>;
  readonly aggregator: Aggregator;
  readonly pipeline: Pipeline;
  readonly identity: IdentityService;
  readonly policy: PolicyService;
  readonly audit: AuditService;
  readonly metrics = new Metrics();
  readonly records: RecordStore;
  readonly approvals: ApprovalService;
  /** The open break-glass windows, the only way a refused call ever passes. */
  readonly breakGlass: BreakGlass;
  /** Tool-definition pins (rug pulls, poisoning), shared with other replicas through `records`. */
  readonly pins: ToolPins;
  /** Server pins: every stdio upstream start is checked against them (refused on a mismatch) and audited. */
  readonly serverPins: ServerPins;
  /** Detectors and masking, compiled once at start. */
  readonly protection: DataProtection;
  /** Scoped, short-lived credentials for upstreams that configure `credentials`, as leases in `records`. */
  readonly credentials: CredentialBroker;
  /** Approval and break-glass events go out here (webhooks; the log records each delivery). */
  readonly announcer: Announcer & { close?(): Promise<void> };
  /** Signs results (`attest.results`) with the newest key; null when off. Its keys are published in the JWKS. */
  readonly resultSigner: ResultSigner | null;
  private readonly sweeper: NodeJS.Timeout;
  private readonly ready: Readiness;
  /** Database roles minted for each instance of a postgres-role upstream, leased through `credentials`. */
  private readonly instanceCredentials: ReadonlyMap<string, InstanceCredentials>;
  /** Every call in the pipeline, so a shutdown can let the held ones answer before the listeners close. */
  private readonly inPipeline = new Map<Promise<void>, CallContext>();
  private readonly log: Logger;
  /** The gateway's clock (injected in tests): approvals, the admin API and policy all read it. */
  readonly now: () => number;
  private readonly newId: () => string;

  constructor(loaded: LoadedConfig, deps: GatewayDeps) {
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.audit = deps.audit ?? AuditService.fromConfig(loaded, deps.log, this.now);
    this.newId = deps.newId ?? randomUUID;
    const attest = loaded.config.attest;
    // Loaded (or created) at start: a key directory that cannot be written stops the start, not a call.
    const attestKeys = new AttestationKeys(resolve(loaded.baseDir, attest.keyDir), this.now);
    this.resultSigner = attest.results ? new CurrentSigner(attestKeys, this.now, deps.log) : null;
    this.identity =
      deps.identity ??
      createIdentity(loaded.config, loaded.baseDir, {
        log: deps.log,
        now: this.now,
        publishedKeys: () => (attest.results ? attestKeys.jwks().keys : []),
      });
    this.protection = dataProtection(loaded);
    this.policy = new PolicyService(loaded.config.policy, loaded.baseDir, {
      log: deps.log,
      onSetChange: (change) => this.audit.notePolicySet(change),
      now: this.now,
      detect: (args) => this.protection.detect(args),
    });
    if (loaded.config.policy.watch) this.policy.watch();
    const policy = this.policy;
    // Opened on first use: a gateway that never holds a call never touches the state store for it.
    this.records =
      deps.records ??
      new DeferredRecordStore(async () => openRecordStore(loaded.config.state, loaded.baseDir));
    // Early: a credentials section this build cannot honour stops the start before anything runs.
    const roleBackends = postgresRoleBackends(loaded, { now: this.now });
    this.credentials = this.credentialBroker(loaded, deps.log, roleBackends);
    this.instanceCredentials = brokeredInstanceCredentials(this.credentials, roleBackends, { log: deps.log });
    this.announcer =
      deps.announcer ??
      new WebhookNotifier(loaded.config.approvals.webhooks, { logger: deps.log, baseDir: loaded.baseDir });
    this.serverPins = this.createServerPins(deps.log);
    this.sandboxes = upstreamSandboxes(loaded, deps.log, deps.sandboxHost ?? defaultSandboxHost(), {
      record: (d) => this.audit.recordEgress(d),
      recordable: () => this.audit.recordable(),
    });
    const starts = new StdioStarts({
      pins: this.serverPins,
      sandboxes: this.sandboxes,
      journal: (record) => this.audit.append(record),
      log: deps.log,
      now: this.now,
      newId: randomUUID,
    });
    this.pool = new UpstreamPool(
      upstreamSpecs(loaded, deps.log, starts, this.instanceCredentials),
      deps.log,
      {
        limits: loaded.config.limits,
        now: this.now,
      },
    );
    const approvalsCfg = loaded.config.approvals;
    this.approvals = new ApprovalService({
      store: this.records,
      journal: (record) => this.audit.append(record),
      announcer: this.announcer,
      log: deps.log,
      now: this.now,
      ttlMs: approvalsCfg.ttlMs,
      gateway: randomUUID(),
    });
    this.breakGlass = new BreakGlass({
      store: this.records,
      journal: (record) => this.audit.append(record),
      announcer: this.announcer,
      log: deps.log,
      now: this.now,
      config: approvalsCfg.breakGlass,
      upstreams: Object.keys(loaded.config.upstreams),
    });
    this.breakGlass.start();
    this.pins = this.toolPins(loaded, deps.log);
    const checks: Record<string, () => Promise<unknown>> = {
      audit: () => this.audit.probe(),
      'policy-set': async () => this.audit.policySetsSettled(),
    };
    if (this.identity.mode !== 'none') checks.revocations = () => this.identity.revocations().sync();
    this.ready = new Readiness({ checks, log: deps.log, now: this.now });
    this.sweeper = setInterval(() => {
      this.approvals.sweep().catch((err) => deps.log.warn('approval sweep failed', { err: String(err) }));
      this.credentials.sweep().catch((err) => deps.log.warn('lease sweep failed', { err: String(err) }));
      this.pins.refresh().catch((err) => deps.log.warn('tool pins not refreshed', { err: String(err) }));
    }, SWEEP_MS).unref();
    this.aggregator = new Aggregator(this.pool, deps.log, {
      recheck: (principal) => this.recheck(principal),
      toolsListed: (items) => policy.learnTools(items),
      pins: this.pins,
      now: this.now,
    });
    const upstreams = loaded.config.upstreams;
    // The order is the security argument: nothing reaches `forward` that was not
    // identified, routed, authorized and durably recorded first.
    const reidentify = identifyStage(this.identity, 'reidentify');
    const hasHeaderCredentials = (name: string): boolean => {
      const upstream = upstreams[name];
      return upstream?.transport === 'http' && upstream.credentials !== undefined;
    };
    const stages: Stage[] = [
      parseStage,
      identifyStage(this.identity, 'identify'),
      routeStage(this.aggregator, this.pool.names),
      paramHeadersStage(this.aggregator),
      // Before validate: policy's `context.request.signed`, and a bad signature never reaches policy.
      requestSignatureStage(
        new RequestSignatures({
          registered: attest.requests.keys,
          nonces: this.records,
          now: this.now,
          maxSkewMs: attest.requests.maxSkewSeconds * 1000,
        }),
      ),
      validateStage(this.aggregator, policy),
      authorizeStage(policy, HONOURED, this.breakGlass),
      // Nothing up to forward leaves the gateway for a call with no credential or one it issues itself.
      auditDecisionStage(this.audit, this.now, (ctx) => {
        const route = ctx.route;
        if (route?.kind !== 'upstream') return false;
        return !hasHeaderCredentials(route.upstream) || this.credentials.issuesLocally(route.upstream);
      }),
      // Only once its decision record is durable does a call let through by break-glass raise its alert.
      breakGlassStage(this.breakGlass),
      // Held until approved, after the decision is durable: the wait and its outcome link to that record.
      approvalStage({
        approvals: this.approvals,
        held: new HeldCalls({
          perPrincipal: approvalsCfg.maxHeldPerPrincipal,
          total: approvalsCfg.maxHeldTotal,
        }),
        policy,
        holdMs: approvalsCfg.holdMs,
        keepAliveMs: approvalsCfg.keepAliveMs,
        honouredLater: HONOURED_AFTER_APPROVAL,
        now: this.now,
        journal: (record) => this.audit.append(record),
        policySetsSettled: () => this.audit.policySetsSettled(),
      }),
      // Again after any wait: a token that expired or was revoked meanwhile stops the call here.
      reidentify,
      // Last before forward: a credential is issued (and its lease recorded) only for a call that will be sent.
      credentialsStage(this.credentials, hasHeaderCredentials),
      // In `record` mode the decision record reaches stable storage here, if the lease's record did not take it there.
      decisionStableStage(this.audit),
      forwardStage(this.aggregator, async (ctx) => reidentify.run(ctx)),
      // A gateway list leaves `forward` unanswered: only what this caller may see goes out.
      filterListStage(policy),
    ];
    // Terminal stages run after every call, whatever happened (audit outcome record, issue 6).
    const terminal: Stage[] = [
      // First: what the outcome record hashes and the client receives is the inspected answer.
      inspectResultStage({
        threshold: (name) => upstreams[name]?.poisoning.threshold ?? DEFAULT_POISONING_THRESHOLD,
        taint: (principalId) => policy.facts.taint(principalId, policy.now()),
        log: deps.log,
      }),
      // Then secrets and personal data, in what inspect-result left: the outcome record keeps what was masked.
      maskStage({
        protection: this.protection,
        markSensitive: (principalId) => policy.facts.markSensitive(principalId, policy.now()),
        log: deps.log,
      }),
      // Then signed as masked, before the outcome record that keeps the signature's hash and key.
      attestStage({ signer: this.resultSigner, now: this.now }),
      ...(deps.terminal ?? []),
      auditOutcomeStage(this.audit, this.now),
      // Last, so it sees how long every other stage took.
      metricsStage(this.metrics),
    ];
    this.pipeline = createPipeline(stages, terminal, deps.log);
  }

  /**
   * The broker over each upstream's backend (a section this build cannot
   * honour stops the start); started at once, so leases a crashed run left
   * are revoked before this one issues any.
   */
  private credentialBroker(
    loaded: LoadedConfig,
    log: Logger,
    instanceBackends: ReadonlyMap<string, CredentialBackend>,
  ): CredentialBroker {
    const identity = loaded.config.identity;
    const issuer = identity.mode === 'token' ? gatewayIssuer(identity) : undefined;
    const backends = credentialBackends(loaded.config, {
      baseDir: loaded.baseDir,
      now: this.now,
      ...(issuer
        ? { gateway: { issuer, actor: issuer, keys: gatewayKeyDir(identity, loaded.baseDir, this.now) } }
        : {}),
    });
    const broker = new CredentialBroker({
      store: this.records,
      backends,
      instanceBackends,
      journal: (record) => this.audit.append(record),
      log,
      now: this.now,
    });
    broker.start().catch((err) => log.warn('credential broker not started', { err: String(err) }));
    return broker;
  }

  /** Server pins in the state store (or the config); a refused start is announced where approval events go. */
  private createServerPins(log: Logger): ServerPins {
    const events = new ServerPinEvents({
      journal: (record) => this.audit.append(record),
      announcer: this.announcer,
      log,
      now: this.now,
      newId: randomUUID,
    });
    return new ServerPins({
      store: new ServerPinStore(this.records),
      // File times are the real clock's: an injected one must not make a fresh file look settled.
      hasher: FileHasher.shared(),
      events,
      log,
      now: this.now,
    });
  }

  /** Pins in the state store; a quarantine is announced where approval events go. */
  private toolPins(loaded: LoadedConfig, log: Logger): ToolPins {
    const upstreams = upstreamPinning(loaded.config.upstreams);
    const events = new PinEvents({
      journal: (record) => this.audit.append(record),
      announcer: this.announcer,
      log,
      now: this.now,
      newId: randomUUID,
      exposed: (upstream, tool) => exposeName(upstreams.get(upstream)?.prefix ?? upstream, tool),
    });
    const pins = new ToolPins({ pins: new PinStore(this.records), events, log, now: this.now, upstreams });
    // The quarantined set is known before any list; until then a call to one still goes through validate's list.
    pins.refresh().catch((err) => log.warn('tool pins not loaded', { err: String(err) }));
    return pins;
  }

  /** Runs one client request through the pipeline; always resolves with a response to send. */
  async handleRequest(
    request: JsonRpcRequest,
    session: DownstreamSession,
    sink: RelatedSink,
    opts: { requestHeaders?: CallContext['requestHeaders']; subjectToken?: string } = {},
  ): Promise<CallResult> {
    const abort = new AbortController();
    session.inflight.set(request.id, abort);
    const ctx: CallContext = {
      callId: this.newId(),
      startedAt: this.now(),
      request: snapshot(request),
      session,
      principal: session.principal,
      sink,
      signal: abort.signal,
      timings: {},
      ...(opts.requestHeaders ? { requestHeaders: opts.requestHeaders } : {}),
      ...(opts.subjectToken ? { subjectToken: opts.subjectToken } : {}),
    };
    const run = this.pipeline.run(ctx);
    this.inPipeline.set(run, ctx);
    try {
      await run;
    } finally {
      this.inPipeline.delete(run);
      session.inflight.delete(request.id);
    }
    if (ctx.error) {
      this.log.info('call ended with error', {
        callId: ctx.callId,
        method: request.method,
        code: ctx.error.code,
        err: ctx.error.message,
      });
    }
    return { response: ctx.response!, ...(ctx.error ? { error: ctx.error } : {}) };
  }

  /**
   * The parts without which every call is denied that fail now (the admin
   * listener's /readyz): the audit log, the record of the live policy set,
   * and, where callers present credentials, the revocation store.
   */
  readiness(): Promise<string[]> {
    return this.ready.failing();
  }

  /** Whether the gateway needs a restart to serve again (the admin listener's /healthz): its audit log broke. */
  needsRestart(): boolean {
    return this.audit.needsRestart();
  }

  /** Expiry and revocation of a caller, again (an open gateway has no credential to check). */
  async recheck(principal: Principal): Promise<void> {
    if (this.identity.mode !== 'none') await this.identity.recheck(principal);
  }

  /** Client notifications: cancellation reaches the call; roots/list_changed goes to the session's upstreams; the rest is dropped. */
  async handleNotification(note: JsonRpcNotification, session: DownstreamSession): Promise<void> {
    if (note.method === 'notifications/initialized') return;
    if (note.method === 'notifications/cancelled') {
      const id = isObject(note.params) ? note.params.requestId : undefined;
      if (typeof id === 'string' || typeof id === 'number') session.inflight.get(id)?.abort();
      return;
    }
    if (session.era === 'legacy' && !session.initialized) return;
    if (!RELAYED_CLIENT_NOTIFICATIONS.has(note.method)) {
      // A notification is never authorized or audited: only the few a client may send unasked are relayed.
      this.log.warn('client notification dropped', {
        method: note.method.slice(0, 200),
        session: session.id,
      });
      return;
    }
    // Over HTTP the door checked this caller just now; over stdio nothing else does.
    const refused = await this.recheck(session.principal).then(
      () => false,
      () => true,
    );
    if (refused) {
      this.log.warn('client notification dropped: caller refused', { session: session.id });
      return;
    }
    // Only a session's own instance was told of the client's roots; one serving many speaks for no one client.
    const all = await this.aggregator.connections(session).catch(() => []);
    const conns = all.filter((c) => c.isolation === 'session');
    await Promise.all(conns.map((c) => c.notify(note.method, note.params)));
  }

  async closeSession(session: DownstreamSession): Promise<void> {
    session.closed = true;
    for (const abort of session.inflight.values()) abort.abort();
    for (const abort of session.subscriptions.values()) abort.abort();
    this.aggregator.forget(session.key);
    await this.pool.release(session.key);
    await this.credentials
      .endSession(session.key)
      .catch((err) => this.log.warn('session leases not revoked', { err: String(err) }));
  }

  /** Ends every call held for approval: each is answered ERR_APPROVAL_ABANDONED, and what it waited on can never be used. */
  async releaseHeld(): Promise<void> {
    clearInterval(this.sweeper);
    await this.approvals
      .abandonMine()
      .catch((err) => this.log.warn('approvals not abandoned', { err: String(err) }));
    const held = [...this.inPipeline].filter(([, ctx]) => ctx.held).map(([run]) => run);
    await Promise.allSettled(held);
    // The transport writes each answer when its call resolves: one turn of the loop later.
    await new Promise((resolve) => setImmediate(resolve));
  }

  async close(): Promise<void> {
    await this.releaseHeld();
    this.policy.close();
    await this.pool.closeAll();
    await Promise.all([...this.sandboxes.values()].map((s) => s.close()));
    // Before the audit log and the store close: each revocation is recorded in both.
    await this.credentials.close().catch((err) => this.log.warn('broker not closed', { err: String(err) }));
    await this.identity.close();
    await this.announcer.close?.();
    await this.breakGlass.stop();
    await this.audit.close();
    await this.records.close();
  }
}

/**
 * Client notifications relayed to upstreams. Anything else (a `tools/call`
 * without an id, which no stage would see) stays at the gateway.
 */
const RELAYED_CLIENT_NOTIFICATIONS: ReadonlySet<string> = new Set(['notifications/roots/list_changed']);

/** The `protect` section compiled, its hash key resolved: a key too short or unresolvable stops the start. */
function dataProtection(loaded: LoadedConfig): DataProtection {
  const ref = loaded.config.protect.mask.hashKey;
  const hashKey = ref === undefined ? undefined : Buffer.from(resolveValue(ref, loaded.baseDir), 'utf8');
  if (hashKey && hashKey.length < MIN_HASH_KEY_BYTES) {
    throw new ConfigError(`protect.mask.hashKey: ${ref} holds fewer than ${MIN_HASH_KEY_BYTES} bytes`, [
      { path: 'protect.mask.hashKey', message: `at least ${MIN_HASH_KEY_BYTES} bytes` },
    ]);
  }
  return new DataProtection(loaded.config.protect, { hashKey });
}
