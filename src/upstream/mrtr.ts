import { isObject, type JsonObject, type JsonRpcResponse } from '../jsonrpc.ts';
import { cancelledUnsent, type RelatedSink } from './connection.ts';

const MAX_ROUNDS = 8;

const needsInput = (res: JsonRpcResponse): boolean => res.result?.resultType === 'input_required';

export interface InputRounds {
  readonly sink: RelatedSink;
  /** Sends the original request again, with the answers. */
  readonly retry: (params: JsonObject) => Promise<JsonRpcResponse>;
  /** The call's own: a cancel while the client is being asked ends the call, with no retry. */
  readonly signal: AbortSignal;
  /** Runs before every retry and throws to refuse it (the caller's revocation is checked again there). */
  readonly beforeRetry: () => Promise<void>;
}

/**
 * A modern upstream asks for client input by returning `input_required`; a
 * legacy client only understands server-to-client requests. The gateway asks
 * the client each question on the call's own stream, then retries the original
 * request with the answers and the opaque `requestState`, byte for byte. Each
 * retry is a new request upstream, so it is held to what the first send was:
 * not cancelled, caller not revoked.
 */
export async function fulfilInputRequired(
  first: JsonRpcResponse,
  params: JsonObject | undefined,
  rounds: InputRounds,
): Promise<JsonRpcResponse> {
  let res = first;
  for (let round = 0; round < MAX_ROUNDS && needsInput(res); round++) {
    const result = res.result as JsonObject;
    const requests = isObject(result.inputRequests) ? result.inputRequests : {};
    const inputResponses: JsonObject = {};
    for (const [key, req] of Object.entries(requests)) {
      if (!isObject(req) || typeof req.method !== 'string') continue;
      const question = {
        jsonrpc: '2.0' as const,
        id: 0,
        method: req.method,
        ...(isObject(req.params) ? { params: req.params } : {}),
      };
      const answer = await untilAborted(rounds.sink.request(question, rounds.signal), rounds.signal);
      if (!answer) return cancelledUnsent(res.id);
      if (!answer.result) return { ...answer, id: res.id };
      inputResponses[key] = answer.result;
    }
    if (rounds.signal.aborted) return cancelledUnsent(res.id);
    await rounds.beforeRetry();
    const next: JsonObject = { ...(params ?? {}), inputResponses };
    if ('requestState' in result) next.requestState = result.requestState;
    res = await rounds.retry(next);
  }
  return res;
}

/** The answer, or undefined once `signal` aborts (a client that never answers holds nothing past its cancel). */
function untilAborted<T>(answer: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    answer.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
