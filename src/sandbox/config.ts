import { z } from 'zod';

/** Below this, node servers hang at start instead of failing (measured: 32 MiB hangs, 64 MiB starts). */
export const MIN_MEMORY_MB = 64;

/** A host a sandboxed upstream may reach through the egress proxy: `name`, `*.suffix`, either with `:port`. */
const allowedHost = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/,
    'must be a host name, *.domain or an IP address, optionally with :port',
  );

const networkSchema = z
  .union([z.literal('none'), z.literal('host'), z.strictObject({ allow: z.array(allowedHost).min(1) })])
  .default('none')
  .describe('none (no network), { allow: [hosts] } (egress through the gateway proxy), or host (flagged)');

const sandboxLimitsSchema = z
  .strictObject({
    /** MiB of memory used: a memory cgroup per process where the machine has one, else RLIMIT_DATA. */
    memoryMb: z.number().int().min(MIN_MEMORY_MB).max(1_048_576).default(2048),
    /** RLIMIT_NPROC inside the sandbox's own user namespace: processes and threads (node uses ~7). */
    processes: z.number().int().min(16).max(100_000).default(256),
    /** RLIMIT_NOFILE. */
    openFiles: z.number().int().min(32).max(1_048_576).default(1024),
    /** RLIMIT_CPU in seconds of CPU time over the process's life; at the limit it is killed (SIGXCPU). */
    cpuSeconds: z.number().int().positive().max(31_536_000).default(86_400),
  })
  .prefault({});

/**
 * What a stdio upstream may touch: its network, the paths it may write, and
 * its resource limits. Everything else of the file system is read-only, and
 * the gateway's own state is not there at all.
 */
export const sandboxSchema = z
  .strictObject({
    network: networkSchema,
    /** Paths the upstream may write (they must exist); everything else is read-only or hidden. */
    writable: z.array(z.string().min(1)).default([]),
    limits: sandboxLimitsSchema,
  })
  .describe('The stdio upstream runs under bubblewrap: network, writable paths, limits');

/** `off`: run unsandboxed, on purpose (flagged by `config check`). Left out: sandboxed where the machine can. */
export const sandboxSettingSchema = z.union([z.literal('off'), sandboxSchema]).optional();

export type SandboxConfig = z.infer<typeof sandboxSchema>;
export type SandboxSetting = z.infer<typeof sandboxSettingSchema>;
export type SandboxNetwork = SandboxConfig['network'];
export type SandboxLimits = SandboxConfig['limits'];

/** The sandbox used when the config leaves the section out. */
export const DEFAULT_SANDBOX: SandboxConfig = sandboxSchema.parse({});
