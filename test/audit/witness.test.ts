import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { checkpointText, openCheckpoint } from '../../src/audit/checkpoint.ts';
import { verifyConsistency } from '../../src/audit/merkle.ts';
import { auditSigner } from '../../src/audit/open.ts';
import { cosign, findCosignature, parseWitnessKey, witnessVerifierKey } from '../../src/audit/witness.ts';
import { silentLogger } from '../../src/observability/log.ts';
import { auditFixture, item, openTestLog } from './helpers.ts';

const NAME = 'witness.test/w1';
const { privateKey } = generateKeyPairSync('ed25519');
const pub = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(12);
const WITNESS_KEY = witnessVerifierKey(NAME, pub);
const FIXED_TIME = 1_790_000_000;

/** A small c2sp.org/tlog-witness on loopback: checks signature and consistency, remembers the latest size. */
function startWitness(
  logKey: () => ReturnType<typeof auditSigner>,
): Promise<{ server: Server; url: string; seen: number[] }> {
  const latest: { size: number; root: Buffer<ArrayBufferLike> } = { size: 0, root: Buffer.alloc(0) };
  const seen: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const blank = body.indexOf('\n\n');
      const head = body.slice(0, blank).split('\n');
      const old = Number(/^old (\d+)$/.exec(head[0] ?? '')?.[1] ?? Number.NaN);
      const proof = head.slice(1).map((l) => Buffer.from(l, 'base64'));
      let c: ReturnType<typeof openCheckpoint>;
      try {
        c = openCheckpoint(body.slice(blank + 2), logKey());
      } catch {
        return void res.writeHead(403).end();
      }
      if (old > c.size) return void res.writeHead(400).end();
      if (old !== latest.size)
        return void res.writeHead(409, { 'content-type': 'text/x.tlog.size' }).end(`${latest.size}\n`);
      const consistent =
        old === 0 ? proof.length === 0 : verifyConsistency(old, c.size, proof, latest.root, c.root);
      if (!consistent) return void res.writeHead(422).end();
      latest.size = c.size;
      latest.root = c.root;
      seen.push(c.size);
      res.writeHead(200).end(`${cosign(NAME, pub, privateKey, FIXED_TIME, checkpointText(c))}\n`);
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen }),
    ),
  );
}

describe('pushing checkpoints to a witness', () => {
  const f = auditFixture('sqlite');
  let witness: Awaited<ReturnType<typeof startWitness>>;
  before(async () => {
    witness = await startWitness(() => auditSigner(f.setup, silentLogger));
  });
  after(() => witness.server.close());

  const open = async () => {
    const { store, log } = await openTestLog(f.setup, {
      checkpointEveryEntries: 1_000_000,
      witnesses: [{ url: witness.url, key: WITNESS_KEY }],
    });
    await log.init();
    return { store, log };
  };

  it('stores the witness cosignature of each checkpoint', async () => {
    const { store, log } = await open();
    await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(item(i))));
    await log.checkpoint();
    const [co] = await store.cosignatures(10);
    const note = (await store.checkpoints()).at(-1)!.note;
    const text = checkpointText(openCheckpoint(note, auditSigner(f.setup, silentLogger)));
    assert.ok(co);
    assert.equal(findCosignature([co.line], parseWitnessKey(WITNESS_KEY), text), co.line);
    await log.close();
  });

  it('proves consistency from the size the witness already has after a restart', async () => {
    const { store, log } = await open();
    await Promise.all(Array.from({ length: 7 }, (_, i) => log.append(item(100 + i))));
    await log.checkpoint();
    assert.equal((await store.cosignatures(17)).length, 1);
    assert.deepEqual(witness.seen, [10, 17]);
    await log.close();
  });

  it('refuses a witness key of the wrong type', () => {
    assert.throws(() => parseWitnessKey(auditSigner(f.setup, silentLogger).verifierKey), {
      code: 'ERR_AUDIT_KEY_INVALID',
    });
  });
});
