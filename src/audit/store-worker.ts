/**
 * The SQLite audit store's own thread. node:sqlite is synchronous, and a
 * durable commit waits for an fsync: here that wait blocks only this thread,
 * so the gateway keeps serving calls and the next group commit fills up
 * meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { reviveBuffers, type StoreCall, type StoreReply } from './store-thread.ts';

// Same as bin/portcullis.js, for this thread: node:sqlite announces itself as experimental on load.
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'ExperimentalWarning') process.stderr.write(`${w.stack ?? w}\n`);
});
const { SqliteAuditStore } = await import('./store-sqlite.ts');

const port = parentPort;
if (!port) throw new Error('store-worker.ts runs only as a worker thread');

const store = new SqliteAuditStore((workerData as { path: string }).path);

port.on('message', (call: StoreCall) => {
  void answer(call).then((reply) => port.postMessage(reply));
});

async function answer(call: StoreCall): Promise<StoreReply> {
  try {
    const method = store[call.method] as (...args: unknown[]) => Promise<unknown>;
    const value = await method.apply(store, call.args.map(reviveBuffers));
    return { id: call.id, ok: true, value };
  } catch (err) {
    return { id: call.id, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}
