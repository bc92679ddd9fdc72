import { isObject } from '../jsonrpc.ts';
import { methodSpec, targetParam } from './methods.ts';

/**
 * The tool, prompt or resource a request targets, as the client named it.
 * Protocol methods (`ping`, lists, `initialize`, ...) target none, whatever
 * their params hold.
 */
export function requestTarget(method: string, params: unknown): string | undefined {
  if (!isObject(params)) return undefined;
  const key = targetParam(method);
  if (key !== undefined) {
    const value = params[key];
    return typeof value === 'string' ? value : undefined;
  }
  if (methodSpec(method)?.target !== 'ref' || !isObject(params.ref)) return undefined;
  const { ref } = params;
  if (ref.type === 'ref/prompt' && typeof ref.name === 'string') return ref.name;
  if (ref.type === 'ref/resource' && typeof ref.uri === 'string') return ref.uri;
  return undefined;
}
