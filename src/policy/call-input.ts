import type { DetectedTypes } from '../protect/service.ts';
import type { Target } from './facts/request.ts';

/** What the validate stage established for the authorize stage: the snapshot policy decides on. */
export interface CallInput {
  readonly target: Target;
  /** Arguments as Cedar values (tools), typed by the tool's inputSchema. */
  readonly input: Record<string, unknown>;
  /** The arguments as sent (for sensitive-read markers). */
  readonly args: Record<string, unknown>;
  /** What the detectors found in the arguments (`context.detected`). */
  readonly detected: DetectedTypes;
  readonly reason: string;
  readonly reasonSource: ReasonSource;
}

/**
 * Where the reason policy decided on came from: the call's own `_meta`
 * (`declared`), the token's `reason` claim (`token`), or nowhere (null: "").
 */
export type ReasonSource = 'declared' | 'token' | null;

/**
 * The resources a `subscriptions/listen` asks to follow, each with the upstream
 * that owns it: every one is authorized as a `resources/subscribe` of its own.
 */
export interface ListenInput {
  readonly resources: readonly (Target & { kind: 'resource' })[];
  readonly reason: string;
  readonly reasonSource: ReasonSource;
}

/** More resources than this in one listen is refused (each costs a decision). */
export const MAX_LISTEN_RESOURCES = 100;

/** Where a caller declares why it makes this call (the gateway token's `reason` claim is the fallback). */
export const REASON_META_KEY = 'io.portcullis/reason';
