/**
 * Characters a reader cannot see but a model reads: Unicode tag characters
 * (U+E0000–E007F, which spell ASCII invisibly) and bidirectional controls
 * (which reorder what a reviewer sees). The gateway strips both from
 * everything it relays, always; nothing legitimate in a tool list, result or
 * prompt needs them.
 */
const STRIPPED_CLASS = '\\u{E0000}-\\u{E007F}\\u200E\\u200F\\u061C\\u202A-\\u202E\\u2066-\\u2069';
const HAS_STRIPPED = new RegExp(`[${STRIPPED_CLASS}]`, 'u');
const STRIPPED = new RegExp(`[${STRIPPED_CLASS}]`, 'gu');

export const TAG_CHARACTERS = /[\u{E0000}-\u{E007F}]/u;
export const BIDI_CONTROLS = /[\u200E\u200F\u061C\u202A-\u202E\u2066-\u2069]/u;
/** Zero-width characters: reported, not stripped (a joiner is part of many emoji). */
const ZERO_WIDTH_CLASS = /[\u200B\u200C\u2060-\u2064\uFEFF\u180E\u00AD]/;
export const hasZeroWidth = (text: string): boolean => ZERO_WIDTH_CLASS.test(text) || text.includes('\u200D');

/** Whether a string holds anything `stripInvisible` removes. */
export const hasInvisible = (text: string): boolean => HAS_STRIPPED.test(text);

/**
 * The JSON value without tag characters and bidi controls in any string or
 * key. Returns the same object when there was nothing to strip, so a clean
 * value costs one regex test per string and no allocation.
 */
export function stripInvisible<T>(value: T): T {
  return strip(value) as T;
}

function strip(value: unknown): unknown {
  if (typeof value === 'string') return HAS_STRIPPED.test(value) ? value.replace(STRIPPED, '') : value;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = strip(value[i]);
      if (v !== value[i]) out ??= value.slice();
      if (out) out[i] = v;
    }
    return out ?? value;
  }
  let out: Record<string, unknown> | undefined;
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const v = strip(obj[key]);
    const k = HAS_STRIPPED.test(key) ? key.replace(STRIPPED, '') : key;
    if (v === obj[key] && k === key) continue;
    out ??= { ...obj };
    if (k !== key) delete out[key];
    out[k] = v;
  }
  return out ?? value;
}

/** The ASCII that tag characters spell (U+E0041 is "A"): what a model reads and a person does not see. */
export function decodeTags(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0xe0020 && cp <= 0xe007e) out += String.fromCharCode(cp - 0xe0000);
  }
  return out;
}

/** Invisible and control characters written as `<U+E0041>`, so a reviewer sees what a model would read. */
export function revealInvisible(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const hidden =
      cp >= 0xe0000 ||
      (cp >= 0x200b && cp <= 0x200f) ||
      (cp >= 0x202a && cp <= 0x202e) ||
      (cp >= 0x2060 && cp <= 0x2069) ||
      cp === 0xfeff ||
      cp === 0x061c ||
      cp === 0x00ad ||
      cp === 0x180e ||
      (cp < 0x20 && cp !== 0x0a);
    out += hidden ? `<U+${cp.toString(16).toUpperCase().padStart(4, '0')}>` : ch;
  }
  return out;
}
