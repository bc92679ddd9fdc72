import { z } from 'zod';

const sha256Hex = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex: 64 lowercase hex digits')
  .describe('SHA-256, hex');

/** npm's Subresource Integrity form, as a lock file's `integrity` writes it. */
const integrity = z
  .string()
  .regex(/^sha(256|384|512)-[A-Za-z0-9+/]+={0,2}$/, 'must be an integrity string: sha512-<base64>')
  .describe('The integrity npm records for the installed package (package-lock.json)');

/**
 * A stdio upstream's pin in the config. `sha256`: the file the server's code
 * starts in (the script an interpreter or npx runs, else the command's own
 * file); `package`: the npm package that code belongs to, by its files'
 * digest (`sha256`, as `portcullis servers show` prints it) or by the
 * integrity npm's lock file records for it. What a pin leaves out is not
 * checked; an upstream without one is pinned on first use in the state store.
 */
export const serverPinSchema = z
  .strictObject({
    sha256: sha256Hex.optional(),
    package: z
      .strictObject({
        name: z.string().min(1).max(214),
        integrity: integrity.optional(),
        sha256: sha256Hex.optional(),
      })
      .refine((p) => p.integrity !== undefined || p.sha256 !== undefined, 'needs integrity or sha256')
      .optional(),
  })
  .refine((p) => p.sha256 !== undefined || p.package !== undefined, 'needs sha256 or package')
  .describe('Hashes this stdio upstream must match to start (server pinning)');

export type ServerPinConfig = z.infer<typeof serverPinSchema>;
