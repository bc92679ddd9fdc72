import { createTwoFilesPatch } from 'diff';
import { canonicalize } from '../audit/jcs.ts';
import { revealInvisible } from './invisible.ts';

/** A definition as a reviewer reads it: keys sorted, indented, invisible characters spelled out. */
function readable(def: unknown): string {
  if (def === undefined) return '(definition too large to keep; only its hash was pinned)\n';
  if (typeof def === 'string') return `${revealInvisible(def)}\n`;
  let sorted: unknown = def;
  try {
    sorted = JSON.parse(canonicalize(def));
  } catch {
    // Lone surrogates: shown as JSON prints them, unsorted.
  }
  return `${revealInvisible(JSON.stringify(sorted, null, 2))}\n`;
}

/** A unified diff of the pinned definition against the one to accept. */
export function definitionDiff(pinned: unknown, next: unknown, label: string): string {
  return createTwoFilesPatch(
    `${label} (pinned)`,
    `${label} (listed)`,
    readable(pinned),
    readable(next),
    '',
    '',
    {
      context: 3,
    },
  );
}
