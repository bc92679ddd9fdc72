import { isObject, type JsonObject, type JsonRpcResponse } from '../jsonrpc.ts';
import type { RelatedSink } from './connection.ts';

const MAX_ROUNDS = 8;

const needsInput = (res: JsonRpcResponse): boolean => res.result?.resultType === 'input_required';

/**
 * A modern upstream asks for client input by returning `input_required`; a
 * legacy client only understands server-to-client requests. The gateway asks
 * the client each question on the call's own stream, then retries the original
 * request with the answers and the opaque `requestState`, byte for byte.
 */
export async function fulfilInputRequired(
  first: JsonRpcResponse,
  params: JsonObject | undefined,
  sink: RelatedSink,
  retry: (params: JsonObject) => Promise<JsonRpcResponse>,
): Promise<JsonRpcResponse> {
  let res = first;
  for (let round = 0; round < MAX_ROUNDS && needsInput(res); round++) {
    const result = res.result as JsonObject;
    const requests = isObject(result.inputRequests) ? result.inputRequests : {};
    const inputResponses: JsonObject = {};
    for (const [key, req] of Object.entries(requests)) {
      if (!isObject(req) || typeof req.method !== 'string') continue;
      const answer = await sink.request({
        jsonrpc: '2.0',
        id: 0,
        method: req.method,
        ...(isObject(req.params) ? { params: req.params } : {}),
      });
      if (!answer.result) return { ...answer, id: res.id };
      inputResponses[key] = answer.result;
    }
    const next: JsonObject = { ...(params ?? {}), inputResponses };
    if ('requestState' in result) next.requestState = result.requestState;
    res = await retry(next);
  }
  return res;
}
