import { z } from 'zod';

/**
 * The admin listener: health, metrics and status, and the approvals API. Off
 * loopback only when callers are identified (identity.mode: token), since the
 * approvals API authenticates them with the gateway's own identity; the
 * config schema checks that, as it needs the identity section.
 */
export const adminSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(0),
    /** Host header values allowed besides the bound address (a name the admin listener is reached by). */
    allowedHosts: z.array(z.string()).default([]),
  })
  .prefault({});
