/**
 * The `protect` piece of the config schema: which detectors run, the bounds
 * of one scan, and how findings are masked. Custom detectors add a type with
 * an RE2 pattern, checked here so a bad pattern fails `config check`.
 */
import { RE2JS } from 're2js';
import { z } from 'zod';
import { isSecretRef } from '../config/secrets.ts';
import { TIERS } from '../policy/config.ts';

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

const maskMode = z.enum(MASK_MODES);
const exposedTool = z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be an exposed ASCII tool name');

/**
 * `protect.mask`: the mode the `mask` obligation uses, and where results are
 * masked whatever the decision says (per tool, upstream or tier; the most
 * specific entry wins and also sets the mode an obligation uses there).
 */
export const maskSchema = z
  .strictObject({
    mode: maskMode.default('redact'),
    /** Exposed tool name -> mode. */
    tools: z.record(exposedTool, maskMode).default({}),
    /** Upstream name -> mode, for every result of that upstream (tools, resources, prompts). */
    upstreams: z.record(z.string().min(1), maskMode).default({}),
    /** Tool tier -> mode. */
    tiers: z.partialRecord(z.enum(TIERS), maskMode).default({}),
    /** The HMAC key of `hash` mode (`env:NAME` or `file:PATH`), so equal values hash alike across calls and replicas. */
    hashKey: z.string().refine(isSecretRef, 'must be a reference: env:NAME or file:PATH').optional(),
  })
  .prefault({})
  .superRefine((mask, ctx) => {
    const modes = [mask.mode, ...Object.values(mask.tools), ...Object.values(mask.upstreams)];
    modes.push(...Object.values(mask.tiers));
    if (modes.includes('hash') && mask.hashKey === undefined)
      ctx.addIssue({ code: 'custom', path: ['hashKey'], message: 'hash masking needs a hashKey' });
  });

export const protectSchema = z
  .strictObject({
    detectors: detectorsSchema,
    limits: scanLimitsSchema,
    mask: maskSchema,
  })
  .prefault({});

export type CustomDetectorConfig = z.infer<typeof customDetectorSchema>;
export type DetectorsConfig = z.infer<typeof detectorsSchema>;
export type ScanLimitsConfig = z.infer<typeof scanLimitsSchema>;
export type ProtectConfig = z.infer<typeof protectSchema>;
export type MaskConfig = z.infer<typeof maskSchema>;
