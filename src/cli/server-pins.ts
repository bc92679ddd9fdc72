import { randomUUID } from 'node:crypto';
import { AuditService } from '../audit/service.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { Logger } from '../observability/log.ts';
import { defaultSandboxHost } from '../sandbox/host.ts';
import { ServerPinAdmin } from '../serverpin/admin.ts';
import { FileHasher } from '../serverpin/digest.ts';
import { ServerPinEvents } from '../serverpin/events.ts';
import { ServerPins } from '../serverpin/service.ts';
import { ServerPinStore } from '../serverpin/store.ts';
import { openRecordStore } from '../state/open.ts';
import { upstreamSandboxes } from '../upstream/sandboxes.ts';
import { StdioStarts } from '../upstream/starts.ts';

/** Server pins as a CLI command uses them: the config's state store and audit log; alerts go to the log only. */
export interface CliServerPins {
  readonly store: ServerPinStore;
  readonly pins: ServerPins;
  readonly admin: ServerPinAdmin;
  /** What a command that spawns upstreams (policy check) starts them through, as the gateway does. */
  readonly starts: StdioStarts;
  close(): Promise<void>;
}

export function openServerPins(loaded: LoadedConfig, log: Logger): CliServerPins {
  const records = openRecordStore(loaded.config.state, loaded.baseDir);
  const audit = AuditService.fromConfig(loaded, log);
  const journal = (record: Record<string, unknown>) => audit.append(record);
  const events = new ServerPinEvents({
    journal,
    announcer: { announce() {} },
    log,
    now: Date.now,
    newId: randomUUID,
  });
  const store = new ServerPinStore(records);
  const pins = new ServerPins({ store, hasher: new FileHasher(), events, log, now: Date.now });
  const sandboxes = upstreamSandboxes(loaded, log, defaultSandboxHost(), {
    record: (d) => audit.recordEgress(d),
    recordable: () => audit.recordable(),
  });
  return {
    store,
    pins,
    admin: new ServerPinAdmin({ store, pins, events, now: Date.now }),
    starts: new StdioStarts({
      pins,
      sandboxes,
      journal,
      log,
      now: Date.now,
      newId: randomUUID,
    }),
    async close() {
      // After the upstreams were closed: their memory cgroups and egress proxies go too.
      await Promise.all([...sandboxes.values()].map((s) => s.close()));
      await audit.close();
      await records.close();
    },
  };
}
