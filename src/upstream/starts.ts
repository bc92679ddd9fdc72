import { resolve } from 'node:path';
import { getDefaultEnvironment } from '@modelcontextprotocol/client/stdio';
import type { Journal } from '../approval/service.ts';
import type { StdioUpstreamConfig } from '../config/schema.ts';
import { resolveValue } from '../config/secrets.ts';
import { PortcullisError, UpstreamError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { sandboxSummary, sandboxUnavailable, type UpstreamSandbox } from '../sandbox/launch.ts';
import { pinnedForm } from '../serverpin/fingerprint.ts';
import type { PinnedLaunch, ServerPins, Verdict } from '../serverpin/service.ts';
import { type InstanceHolder, type UpstreamStart, upstreamStartRecord } from './start-record.ts';
import { stdioTransport } from './stdio.ts';
import type { MessageTransport } from './transport.ts';

export interface StdioStartsDeps {
  readonly pins: ServerPins;
  /** Each stdio upstream's sandbox; an upstream with none here is refused. */
  readonly sandboxes: ReadonlyMap<string, UpstreamSandbox>;
  readonly journal: Journal;
  readonly log: Logger;
  readonly now: () => number;
  readonly newId: () => string;
}

/** The variables of the child's environment a launch is resolved with (what its spawn and npx see). */
const LAUNCH_ENV = ['PATH', 'HOME', 'npm_config_cache', 'NODE_OPTIONS'] as const;

/** How a configured stdio upstream is launched, as server pinning checks it. */
export function pinnedLaunch(name: string, cfg: StdioUpstreamConfig, baseDir: string): PinnedLaunch {
  const inherited = getDefaultEnvironment();
  const env = Object.fromEntries(
    LAUNCH_ENV.map((key) => [
      key,
      cfg.env[key] !== undefined ? resolveValue(cfg.env[key], baseDir) : inherited[key],
    ]),
  );
  return {
    upstream: name,
    command: cfg.command,
    args: cfg.args,
    cwd: cfg.cwd ? resolve(baseDir, cfg.cwd) : baseDir,
    env,
    pin: cfg.pin,
  };
}

/**
 * Every start of a stdio upstream process: checked against its server pin
 * first (refused with ERR_SERVER_PIN_MISMATCH or ERR_SERVER_UNVERIFIED),
 * spawned from the file that was checked, and written to the audit log
 * (`upstream-start`: who it serves, the command, the pinned and actual hashes,
 * started, refused or failed). A process whose start cannot be recorded is closed.
 */
export class StdioStarts {
  private readonly d: StdioStartsDeps;

  constructor(deps: StdioStartsDeps) {
    this.d = deps;
  }

  async open(
    name: string,
    cfg: StdioUpstreamConfig,
    baseDir: string,
    holder: InstanceHolder,
    credential: Readonly<Record<string, string>> = {},
  ): Promise<MessageTransport> {
    const sandbox = this.d.sandboxes.get(name);
    if (!sandbox) throw sandboxUnavailable(name, 'no sandbox decided for it');
    const launch = pinnedLaunch(name, cfg, baseDir);
    const verdict = await this.d.pins.check(launch);
    const base = {
      upstream: name,
      holder,
      command: {
        command: cfg.command,
        args: cfg.args,
        cwd: launch.cwd,
        executable: verdict.plan?.executable,
      },
      pin: pinOf(verdict),
      sandbox: sandboxSummary(sandbox.mode, sandbox.host),
    };
    if (sandbox.mode.kind === 'refused') {
      const refused = sandboxUnavailable(name, sandbox.mode.reason);
      await this.write({ ...base, result: 'refused', code: refused.code, reason: sandbox.mode.reason }).catch(
        (err) =>
          this.d.log.error('upstream start record not written', {
            upstream: name,
            alert: true,
            err: String(err),
          }),
      );
      throw refused;
    }
    if (!verdict.ok) {
      await this.write({ ...base, result: 'refused', code: verdict.code, reason: verdict.reason }).catch(
        (err) =>
          this.d.log.error('upstream start record not written', {
            upstream: name,
            alert: true,
            err: String(err),
          }),
      );
      throw new UpstreamError(verdict.code, `${name}: refused to start: ${verdict.reason}`);
    }
    const transport = stdioTransport(name, cfg, baseDir, this.d.log, {
      credential,
      executable: verdict.plan.executable,
      sandbox,
    });
    const start = transport.start.bind(transport);
    transport.start = async () => {
      try {
        await start();
      } catch (err) {
        await this.write({ ...base, result: 'failed', reason: String(err) }).catch(() => {});
        throw err;
      }
      const pid = (transport as { pid?: number | null }).pid ?? undefined;
      try {
        await this.write({ ...base, result: 'started', pid });
      } catch (err) {
        await transport.close();
        throw new PortcullisError('ERR_AUDIT_UNAVAILABLE', `${name}: start not recorded`, { cause: err });
      }
    };
    return transport;
  }

  private async write(start: UpstreamStart): Promise<void> {
    await this.d.journal(upstreamStartRecord(start, { time: this.d.now(), id: this.d.newId() }));
  }
}

function pinOf(v: Verdict): UpstreamStart['pin'] {
  const form = (x: unknown) => (x && typeof x === 'object' && 'digest' in x ? pinnedForm(x as never) : x);
  return {
    ...(v.source ? { source: v.source } : {}),
    ...(v.expected ? { expected: form(v.expected) } : {}),
    ...(v.actual ? { actual: pinnedForm(v.actual) } : {}),
  };
}
