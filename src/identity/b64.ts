const ALPHABET = /^[A-Za-z0-9_-]*$/;

/**
 * Strict, canonical base64url without padding (RFC 7515 §2): any other
 * character, a dangling sextet or non-zero unused bits is refused, so one
 * token has exactly one spelling.
 */
export function decodeB64url(text: string): Buffer | undefined {
  if (!ALPHABET.test(text) || text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}
