import { JSONRPC } from '../errors.ts';
import { errorResponse } from '../jsonrpc.ts';
import type { RelatedSink } from './connection.ts';

/**
 * What an upstream sends on its own, outside any call in flight (list changes,
 * resource updates, sampling or elicitation requests), reaches a long-lived
 * client stream only while the caller passes `check` (expiry and revocation of
 * the session's current principal, looked up per message, in order). A refused
 * message is dropped and `onRefused` ends the stream; a client that comes back
 * with a fresh token passes the next check again.
 */
export function revocationGate(
  inner: RelatedSink,
  check: () => Promise<void>,
  onRefused: () => void,
): RelatedSink {
  let queue: Promise<boolean> = Promise.resolve(true);
  const pass = (): Promise<boolean> => {
    queue = queue.then(
      () =>
        check().then(
          () => true,
          () => {
            onRefused();
            return false;
          },
        ),
      () => false,
    );
    return queue;
  };
  return {
    notify(message) {
      void pass().then((ok) => {
        if (!ok) return;
        try {
          inner.notify(message);
        } catch {
          // A stream that broke underneath is the transport's to notice; the gate only drops.
        }
      });
    },
    async request(message, signal) {
      if (await pass()) return inner.request(message, signal);
      return errorResponse(message.id, {
        code: JSONRPC.INTERNAL_ERROR,
        message: 'Client stream unavailable',
      });
    },
  };
}
