import { JSONRPC } from '../errors.ts';
import { errorResponse } from '../jsonrpc.ts';
import type { RelatedSink } from './connection.ts';

/**
 * What an upstream sends on its own, outside any call in flight (list changes,
 * resource updates, sampling or elicitation requests), reaches a long-lived
 * client stream only while the caller still passes `check` (expiry and
 * revocation, looked up per message). The first refusal closes the gate for
 * good and calls `onRefused` (which ends the stream). Messages keep their order.
 */
export function revocationGate(
  inner: RelatedSink,
  check: () => Promise<void>,
  onRefused: () => void,
): RelatedSink {
  let queue: Promise<boolean> = Promise.resolve(true);
  let open = true;
  const pass = (): Promise<boolean> => {
    queue = queue.then(async () => {
      if (!open) return false;
      try {
        await check();
        return true;
      } catch {
        open = false;
        onRefused();
        return false;
      }
    });
    return queue;
  };
  return {
    notify(message) {
      void pass().then((ok) => {
        if (ok) inner.notify(message);
      });
    },
    async request(message) {
      if (await pass()) return inner.request(message);
      return errorResponse(message.id, {
        code: JSONRPC.INTERNAL_ERROR,
        message: 'Client stream unavailable',
      });
    },
  };
}
