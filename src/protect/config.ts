/**
 * The `protect` piece of the config schema: which detectors run, the bounds
 * of one scan, and how findings are masked. Custom detectors add a type with
 * an RE2 pattern, checked here so a bad pattern fails `config check`.
 */
import { RE2JS } from 're2js';
import { z } from 'zod';

export const PII_TYPES = ['email', 'phone', 'payment-card', 'iban', 'us-ssn', 'ipv4', 'ipv6'] as const;
export type PiiType = (typeof PII_TYPES)[number];

/** Validators a custom detector may name; each takes the match (or its first group). */
export const VALIDATOR_NAMES = ['luhn', 'iban', 'ssn', 'none'] as const;

export const MASK_MODES = ['redact', 'partial', 'hash', 'block'] as const;
export type MaskMode = (typeof MASK_MODES)[number];

const TYPE_NAME = /^[a-z][a-z0-9-]{0,63}$/;

const re2Pattern = z
  .string()
  .min(1)
  .max(4096)
  .superRefine((pattern, ctx) => {
    try {
      RE2JS.compile(pattern);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not an RE2 pattern: ${(err as Error).message}` });
    }
  });

/** `protect.detectors.custom[]`: one more type to find, by pattern and validator. */
export const customDetectorSchema = z.strictObject({
  /** The type name findings carry (`[REDACTED:NAME]`, `context.detected.pii`). */
  name: z.string().regex(TYPE_NAME, 'lowercase letters, digits and -, starting with a letter'),
  /** RE2 syntax; with a capture group, the first group that matched is what is masked. */
  pattern: re2Pattern,
  validator: z.enum(VALIDATOR_NAMES).default('none'),
  /** Case-insensitive literals: when given, the pattern runs only within 256 characters of one (much faster). */
  keywords: z.array(z.string().min(1).max(64)).max(64).optional(),
  kind: z.enum(['pii', 'secret']).default('pii'),
});

export const detectorsSchema = z
  .strictObject({
    /** gitleaks' default rules and the project's own. */
    secrets: z.boolean().default(true),
    pii: z.array(z.enum(PII_TYPES)).default([...PII_TYPES]),
    custom: z.array(customDetectorSchema).max(256).default([]),
  })
  .prefault({});

export const scanLimitsSchema = z
  .strictObject({
    /** UTF-16 units of string content one scan reads; past it the result is withheld. */
    maxChars: z
      .number()
      .int()
      .min(1024)
      .max(1 << 30)
      .default(16 * 1024 * 1024),
    maxMillis: z.number().int().min(1).max(60_000).default(1000),
    maxDepth: z.number().int().min(1).max(10_000).default(128),
  })
  .prefault({});

export const protectSchema = z
  .strictObject({
    detectors: detectorsSchema,
    limits: scanLimitsSchema,
    mask: z
      .strictObject({
        mode: z.enum(MASK_MODES).default('redact'),
        /** The HMAC key of `hash` mode (`env:NAME` or `file:PATH`), so equal values hash alike across calls. */
        hashKey: z.string().min(1).optional(),
      })
      .prefault({}),
  })
  .prefault({});

export type CustomDetectorConfig = z.infer<typeof customDetectorSchema>;
export type DetectorsConfig = z.infer<typeof detectorsSchema>;
export type ScanLimitsConfig = z.infer<typeof scanLimitsSchema>;
export type ProtectConfig = z.infer<typeof protectSchema>;
