import { PortcullisError } from '../errors.ts';

/**
 * What a break-glass window lets through: calls to the named tools or
 * upstreams, and, when principals are named, only theirs. There is no term for
 * "everything": a window must name at least one tool or upstream.
 */
export interface BreakGlassScope {
  /** Exposed tool names; one ending in `*` matches every name it begins. */
  readonly tools: readonly string[];
  readonly upstreams: readonly string[];
  /** Principal ids, or `user:SUB` for a token's subject; empty: any authenticated caller. */
  readonly principals: readonly string[];
}

/** A call as a window sees it. */
export interface ScopedCall {
  readonly principal: { readonly id: string; readonly user?: string | undefined };
  /** The upstream the call is routed to (its config name). */
  readonly upstream: string;
  /** The exposed tool name, for a `tools/call`. */
  readonly tool?: string | undefined;
}

const MAX_TERMS = 32;
const TOOL = /^[A-Za-z0-9_.-]{1,128}\*?$/;
const UPSTREAM = /^[a-z][a-z0-9_-]{0,31}$/;
const PRINCIPAL = /^[\x21-\x2b\x2d-\x7e]{1,256}$/;

/**
 * `tool:NAME`, `upstream:NAME` and `principal:ID` terms, comma-separated.
 * `upstreams`, when given, are the names an `upstream:` term may use.
 */
export function parseScope(text: string, upstreams?: readonly string[]): BreakGlassScope {
  const terms = text.split(',').map((t) => t.trim());
  if (terms.length > MAX_TERMS) throw scopeError(`more than ${MAX_TERMS} terms`);
  const tools = new Set<string>();
  const ups = new Set<string>();
  const principals = new Set<string>();
  for (const term of terms) {
    const at = term.indexOf(':');
    const kind = at < 0 ? term : term.slice(0, at);
    const value = at < 0 ? '' : term.slice(at + 1);
    if (kind === 'tool' && TOOL.test(value) && value !== '*') tools.add(value);
    else if (kind === 'upstream' && UPSTREAM.test(value)) {
      if (upstreams && !upstreams.includes(value)) throw scopeError(`no upstream named ${value}`);
      ups.add(value);
    } else if (kind === 'principal' && PRINCIPAL.test(value) && value !== 'user:') principals.add(value);
    else throw scopeError(`not a scope term: ${JSON.stringify(term)}`);
  }
  if (tools.size + ups.size === 0) throw scopeError('name at least one tool:NAME or upstream:NAME');
  return { tools: [...tools].sort(), upstreams: [...ups].sort(), principals: [...principals].sort() };
}

/** The scope as `--scope` would write it, in a stable order. */
export function scopeText(s: BreakGlassScope): string {
  return [
    ...s.tools.map((t) => `tool:${t}`),
    ...s.upstreams.map((u) => `upstream:${u}`),
    ...s.principals.map((p) => `principal:${p}`),
  ].join(',');
}

/** Whether the scope covers the call: one of its tools or upstreams, and one of its principals if it names any. */
export function covers(s: BreakGlassScope, call: ScopedCall): boolean {
  const target =
    s.upstreams.includes(call.upstream) ||
    (call.tool !== undefined && s.tools.some((t) => toolMatches(t, call.tool!)));
  return (
    target && (s.principals.length === 0 || s.principals.some((p) => principalMatches(p, call.principal)))
  );
}

const toolMatches = (term: string, tool: string): boolean =>
  term.endsWith('*') ? tool.startsWith(term.slice(0, -1)) : tool === term;

const principalMatches = (term: string, p: ScopedCall['principal']): boolean =>
  term.startsWith('user:') ? p.user !== undefined && term.slice('user:'.length) === p.user : term === p.id;

const scopeError = (detail: string): PortcullisError =>
  new PortcullisError('ERR_BREAKGLASS_SCOPE', `break-glass scope: ${detail}`);
