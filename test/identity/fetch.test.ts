import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { PortcullisError } from '../../src/errors.ts';
import { addressRefusal } from '../../src/identity/address-guard.ts';
import { createFormPoster, createJsonFetcher } from '../../src/identity/fetch.ts';

const CFG = { allowLoopback: true, allowPrivate: false, timeoutMs: 2000, maxBytes: 1024, maxRedirects: 2 };

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof PortcullisError, String(err));
    return err.code;
  }
}

describe('metadata and JWKS fetches', () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/jwks') {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=120' });
        res.end('{"keys":[]}');
      } else if (req.url === '/big') res.end(JSON.stringify({ pad: 'x'.repeat(5000) }));
      else if (req.url === '/to-private') res.writeHead(302, { location: 'http://10.0.0.1/jwks' }).end();
      else if (req.url === '/to-metadata')
        res.writeHead(302, { location: 'http://169.254.169.254/latest' }).end();
      else if (req.url === '/to-jwks') res.writeHead(302, { location: '/jwks' }).end();
      else if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
      else if (req.url === '/hang') return;
      else if (req.url === '/token' && req.method === 'POST') {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          const form = Object.fromEntries(new URLSearchParams(body));
          const status = form.grant_type === 'good' ? 200 : 400;
          const answer =
            status === 200 ? { form, authorization: req.headers.authorization } : { error: 'invalid_grant' };
          res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
        });
      } else if (req.url === '/token-moved') res.writeHead(307, { location: '/token' }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('fetches JSON from loopback when allowed, with the max-age the server gave', async () => {
    const got = await createJsonFetcher(CFG)(`${base}/jwks`);
    assert.deepEqual(got, { json: { keys: [] }, maxAge: 120 });
  });

  it('refuses loopback unless the config allows it', async () => {
    assert.equal(
      await code(createJsonFetcher({ ...CFG, allowLoopback: false })(`${base}/jwks`)),
      'ERR_FETCH_BLOCKED',
    );
  });

  it('re-checks every redirect and refuses one to a private or link-local address', async () => {
    const f = createJsonFetcher(CFG);
    assert.equal(await code(f(`${base}/to-private`)), 'ERR_FETCH_BLOCKED');
    assert.equal(await code(f(`${base}/to-metadata`)), 'ERR_FETCH_BLOCKED');
    assert.deepEqual((await f(`${base}/to-jwks`)).json, { keys: [] });
    assert.equal(await code(f(`${base}/loop`)), 'ERR_FETCH_FAILED');
  });

  it('caps the response size and the time a provider may take', async () => {
    const f = createJsonFetcher({ ...CFG, timeoutMs: 200 });
    assert.equal(await code(f(`${base}/big`)), 'ERR_FETCH_FAILED');
    assert.equal(await code(f(`${base}/hang`)), 'ERR_FETCH_FAILED');
  });

  it('refuses plain http to anything but loopback, other schemes and credentials in the URL', async () => {
    const f = createJsonFetcher({ ...CFG, allowPrivate: true });
    assert.equal(await code(f('http://10.1.2.3/jwks')), 'ERR_FETCH_BLOCKED');
    assert.equal(await code(f('file:///etc/passwd')), 'ERR_FETCH_BLOCKED');
    assert.equal(await code(f('https://user:pw@127.0.0.1/')), 'ERR_FETCH_BLOCKED');
  });

  it('classifies addresses: private, link-local, mapped IPv4 and reserved ones', () => {
    const strict = { ...CFG, allowLoopback: false };
    assert.equal(addressRefusal('10.0.0.1', strict), 'private address');
    assert.equal(addressRefusal('192.168.1.1', strict), 'private address');
    assert.equal(addressRefusal('fd00::1', strict), 'private address');
    assert.equal(addressRefusal('169.254.169.254', strict), 'link-local address');
    assert.equal(addressRefusal('::ffff:127.0.0.1', strict), 'loopback address');
    assert.match(addressRefusal('0.0.0.0', { ...CFG, allowPrivate: true }) ?? '', /^special-purpose address/);
    assert.equal(addressRefusal('93.184.216.34', strict), undefined);
    assert.equal(addressRefusal('10.0.0.1', { ...strict, allowPrivate: true }), undefined);
  });

  it('posts a form with its authorization and reads the JSON answer, an OAuth error answer on 400 included', async () => {
    const post = createFormPoster(CFG);
    const ok = await post(`${base}/token`, {
      form: { grant_type: 'good', scope: 'a b' },
      authorization: 'Basic eDp5',
    });
    assert.deepEqual(ok, {
      status: 200,
      json: { form: { grant_type: 'good', scope: 'a b' }, authorization: 'Basic eDp5' },
    });
    const refused = await post(`${base}/token`, { form: { grant_type: 'bad' }, authorization: 'Basic eDp5' });
    assert.deepEqual(refused, { status: 400, json: { error: 'invalid_grant' } });
  });

  it('never follows a redirect of a form post, which carries client credentials', async () => {
    const post = createFormPoster(CFG);
    assert.equal(
      await code(post(`${base}/token-moved`, { form: { grant_type: 'good' }, authorization: 'Basic eDp5' })),
      'ERR_FETCH_BLOCKED',
    );
  });

  it("guards a form post like a fetch: loopback refused unless allowed, a hung server ended by the caller's signal", async () => {
    const strict = createFormPoster({ ...CFG, allowLoopback: false });
    assert.equal(
      await code(strict(`${base}/token`, { form: {}, authorization: 'Basic eDp5' })),
      'ERR_FETCH_BLOCKED',
    );
    const hung = createFormPoster(CFG)(`${base}/hang`, {
      form: {},
      authorization: 'Basic eDp5',
      signal: AbortSignal.timeout(50),
    });
    assert.equal(await code(hung), 'ERR_FETCH_FAILED');
  });
});
