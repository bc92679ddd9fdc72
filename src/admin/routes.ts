import { PortcullisError } from '../errors.ts';

/** What an approvals request asks for, by its method and path. */
export type ApprovalsRoute =
  | { readonly kind: 'list'; readonly all: boolean }
  | { readonly kind: 'show'; readonly id: string }
  | { readonly kind: 'decide'; readonly id: string; readonly verdict: 'grant' | 'deny' }
  | { readonly kind: 'callback'; readonly source: string };

/** Approval ids are `apr_` and base64url; a callback source is a config name. Anything else names nothing. */
const ID = /^[A-Za-z0-9_-]{1,100}$/;
const SOURCE = /^[a-z][a-z0-9_-]{0,31}$/;

const VERDICTS = { approve: 'grant', deny: 'deny' } as const;

/** The routes under `/approvals`; ERR_NOT_FOUND or ERR_HTTP_METHOD_NOT_ALLOWED (with the methods allowed) otherwise. */
export function approvalsRoute(method: string | undefined, url: URL): ApprovalsRoute {
  const parts = url.pathname.split('/').slice(2);
  const route = match(parts, url);
  if (!route) throw new PortcullisError('ERR_NOT_FOUND', `no admin route ${url.pathname}`);
  const allowed = route.kind === 'list' || route.kind === 'show' ? 'GET' : 'POST';
  if (method !== allowed)
    throw new PortcullisError('ERR_HTTP_METHOD_NOT_ALLOWED', `${method} ${url.pathname}`, {
      detail: { allow: allowed },
    });
  return route;
}

function match(parts: string[], url: URL): ApprovalsRoute | undefined {
  const [first, second, ...rest] = parts;
  if (rest.length > 0) return undefined;
  if (first === undefined) return { kind: 'list', all: url.searchParams.get('all') === '1' };
  if (first === 'callback' && second !== undefined)
    return SOURCE.test(second) ? { kind: 'callback', source: second } : undefined;
  if (!ID.test(first)) return undefined;
  if (second === undefined) return { kind: 'show', id: first };
  if (second === 'approve' || second === 'deny')
    return { kind: 'decide', id: first, verdict: VERDICTS[second] };
  return undefined;
}
