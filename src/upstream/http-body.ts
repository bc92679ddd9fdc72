import { type JsonRpcMessage, nestingExceeds, validateMessage } from '../jsonrpc.ts';

/** Deeper answers are refused before parsing: the gateway's own walks (hashing, freezing) recurse. */
export const UPSTREAM_MAX_JSON_DEPTH = 1000;

/** What one upstream body (or SSE event) held: its JSON-RPC messages, and why any part of it was none. */
export interface ParsedBody {
  messages: JsonRpcMessage[];
  problems: string[];
}

/**
 * Reads the bodies real servers send under `application/json`: one message,
 * a batch array, or several messages one per line (NDJSON). A part that is
 * not a JSON-RPC message is reported, never silently dropped with the rest.
 */
export function parseJsonBody(text: string): ParsedBody {
  const out: ParsedBody = { messages: [], problems: [] };
  if (text.trim() === '') return out;
  const whole = tryParse(text);
  if (whole.ok) {
    collect(whole.value, 'body', out);
    return out;
  }
  const lines = text.split(/\r?\n/);
  if (lines.filter((l) => l.trim() !== '').length < 2) {
    out.problems.push(`body is not JSON: ${whole.error}`);
    return out;
  }
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const parsed = tryParse(line);
    if (parsed.ok) collect(parsed.value, `line ${i + 1}`, out);
    else out.problems.push(`line ${i + 1} is not JSON: ${parsed.error}`);
  });
  return out;
}

function collect(value: unknown, where: string, out: ParsedBody): void {
  const items = Array.isArray(value) ? value : [value];
  items.forEach((item, i) => {
    const at = Array.isArray(value) ? `${where}, item ${i + 1}` : where;
    try {
      out.messages.push(validateMessage(item));
    } catch (err) {
      out.problems.push(`${at} is not a JSON-RPC message: ${(err as Error).message}`);
    }
  });
}

function tryParse(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (nestingExceeds(text, UPSTREAM_MAX_JSON_DEPTH)) {
    return { ok: false, error: `nested deeper than ${UPSTREAM_MAX_JSON_DEPTH}` };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    // The parser quotes the start of the text; what an upstream sent stays out of the log.
    return { ok: false, error: (err as Error).message.replace(/, ".*is not valid JSON$/s, '') };
  }
}
