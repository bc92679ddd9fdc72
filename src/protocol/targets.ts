import { isObject } from '../jsonrpc.ts';

/** Which string parameter names the target of each method that targets one tool, prompt or resource. */
export const TARGET_PARAM: ReadonlyMap<string, string> = new Map([
  ['tools/call', 'name'],
  ['prompts/get', 'name'],
  ['resources/read', 'uri'],
  ['resources/subscribe', 'uri'],
  ['resources/unsubscribe', 'uri'],
]);

/**
 * The tool, prompt or resource a request targets, as the client named it.
 * Protocol methods (`ping`, lists, `initialize`, ...) target none, whatever
 * their params hold.
 */
export function requestTarget(method: string, params: unknown): string | undefined {
  if (!isObject(params)) return undefined;
  const key = TARGET_PARAM.get(method);
  if (key !== undefined) {
    const value = params[key];
    return typeof value === 'string' ? value : undefined;
  }
  if (method !== 'completion/complete' || !isObject(params.ref)) return undefined;
  const { ref } = params;
  if (ref.type === 'ref/prompt' && typeof ref.name === 'string') return ref.name;
  if (ref.type === 'ref/resource' && typeof ref.uri === 'string') return ref.uri;
  return undefined;
}
