/** The load generator: MCP over node:http keep-alive, or newline JSON over stdio. */
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchProcess } from './processes.ts';
import { CALL_TIMEOUT_MS, INIT_TIMEOUT_MS, PROTOCOL_VERSION } from './settings.ts';

export const CLIENT_DESCRIPTION =
  'bench/run.ts built-in client: node:http keep-alive Agent, hand-written MCP ' +
  `${PROTOCOL_VERSION} (initialize + notifications/initialized + tools/list once per virtual caller, ` +
  'then tools/call echo in a loop; JSON or SSE responses parsed); stdio: newline JSON on the child pipes';

const INITIALIZE_PARAMS = {
  protocolVersion: PROTOCOL_VERSION,
  capabilities: {},
  clientInfo: { name: 'portcullis-bench', version: '1.0.0' },
};

/** A JSON-RPC response as the bench reads it. */
interface RpcMessage {
  id?: number;
  result?: {
    protocolVersion?: string;
    tools?: { name: string }[];
    content?: { text?: string }[];
    isError?: boolean;
  };
  error?: { code: number; message: string };
}

/** What the load generator needs of a caller, over HTTP or stdio. */
export interface Caller {
  initialize(): Promise<void>;
  listTools(): Promise<void>;
  call(text: string): Promise<void>;
  close(): Promise<void>;
}

/** Pulls the JSON-RPC response with `id` out of a JSON or SSE body. */
function parseRpcBody(contentType: string, body: string, id: number): RpcMessage {
  if (contentType.includes('text/event-stream')) {
    for (const event of body.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      const msg = JSON.parse(data) as RpcMessage;
      if (msg.id === id && ('result' in msg || 'error' in msg)) return msg;
    }
    throw new Error(`no response for id ${id} in SSE body`);
  }
  const msg = JSON.parse(body) as RpcMessage;
  if (msg.id !== id) throw new Error(`response id ${msg.id}, expected ${id}`);
  return msg;
}

function checkListed(msg: RpcMessage, tool: string): void {
  if (msg.error) throw new Error(`tools/list: rpc error ${msg.error.code}: ${msg.error.message}`);
  const names = (msg.result?.tools ?? []).map((t) => t.name);
  if (!names.includes(tool)) throw new Error(`tools/list: no ${tool} among ${JSON.stringify(names)}`);
}

function checkEcho(msg: RpcMessage, text: string): void {
  if (msg.error) throw new Error(`rpc error ${msg.error.code}: ${msg.error.message}`);
  const got = msg.result?.content?.[0]?.text;
  if (got !== text || msg.result?.isError) throw new Error(`unexpected result ${JSON.stringify(msg.result)}`);
}

/** One virtual caller: its own MCP session over a shared keep-alive agent. */
export class HttpMcpSession implements Caller {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly tool: string;
  /** Sent on every request (the bearer token of the full-pipeline targets). */
  private readonly extraHeaders: Record<string, string>;
  private nextId = 0;
  private sessionId: string | undefined;
  private protocolVersion = PROTOCOL_VERSION;

  constructor(url: string, agent: http.Agent, tool: string, extraHeaders: Record<string, string> = {}) {
    this.url = new URL(url);
    this.agent = agent;
    this.tool = tool;
    this.extraHeaders = extraHeaders;
  }

  private post(message: object, timeoutMs = CALL_TIMEOUT_MS) {
    const body = JSON.stringify(message);
    const headers: http.OutgoingHttpHeaders = {
      ...this.extraHeaders,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': Buffer.byteLength(body),
      'mcp-protocol-version': this.protocolVersion,
    };
    if (this.sessionId) headers['mcp-session-id'] = this.sessionId;
    return this.request('POST', headers, body, timeoutMs);
  }

  private request(
    method: string,
    headers: http.OutgoingHttpHeaders,
    body?: string,
    timeoutMs = CALL_TIMEOUT_MS,
  ): Promise<{ status: number | undefined; headers: http.IncomingHttpHeaders; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path: this.url.pathname,
          method,
          agent: this.agent,
          headers,
          timeout: timeoutMs,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async initialize() {
    const id = ++this.nextId;
    const res = await this.post(
      { jsonrpc: '2.0', id, method: 'initialize', params: INITIALIZE_PARAMS },
      INIT_TIMEOUT_MS,
    );
    if (res.status !== 200) throw new Error(`initialize: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    const msg = parseRpcBody(res.headers['content-type'] ?? '', res.text, id);
    if (msg.error) throw new Error(`initialize: ${msg.error.message}`);
    const sessionId = res.headers['mcp-session-id'];
    this.sessionId = Array.isArray(sessionId) ? sessionId[0] : sessionId;
    if (!this.sessionId) throw new Error('initialize: no Mcp-Session-Id');
    this.protocolVersion = msg.result?.protocolVersion ?? PROTOCOL_VERSION;
    const note = await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    if (note.status !== 202 && note.status !== 200)
      throw new Error(`notifications/initialized: HTTP ${note.status}`);
  }

  /** What a real client does before calling: fails unless the tool is listed. */
  async listTools() {
    const id = ++this.nextId;
    const res = await this.post({ jsonrpc: '2.0', id, method: 'tools/list', params: {} });
    if (res.status !== 200) throw new Error(`tools/list: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    checkListed(parseRpcBody(res.headers['content-type'] ?? '', res.text, id), this.tool);
  }

  /** The tool names a tools/list answers with (`--scale` measures it; the first may validate the policies against a large new catalog). */
  async listed(): Promise<string[]> {
    const id = ++this.nextId;
    const res = await this.post({ jsonrpc: '2.0', id, method: 'tools/list', params: {} }, INIT_TIMEOUT_MS);
    if (res.status !== 200) throw new Error(`tools/list: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    const msg = parseRpcBody(res.headers['content-type'] ?? '', res.text, id);
    checkListed(msg, this.tool);
    return (msg.result?.tools ?? []).map((t) => t.name);
  }

  async call(text: string) {
    const id = ++this.nextId;
    const res = await this.post({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: this.tool, arguments: { text } },
    });
    if (res.status !== 200) throw new Error(`tools/call: HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    checkEcho(parseRpcBody(res.headers['content-type'] ?? '', res.text, id), text);
  }

  async close() {
    if (!this.sessionId) return;
    const headers = {
      ...this.extraHeaders,
      'mcp-session-id': this.sessionId,
      'mcp-protocol-version': this.protocolVersion,
    };
    await this.request('DELETE', headers).catch(() => {});
  }
}

/** One stdio connection shared by every caller: requests are pipelined by id. */
export class StdioMcpClient implements Caller {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (m: RpcMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
  >();

  private readonly proc: BenchProcess;
  private readonly tool: string;

  constructor(proc: BenchProcess, tool: string) {
    this.proc = proc;
    this.tool = tool;
    let buf = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim()) this.onLine(line);
        nl = buf.indexOf('\n');
      }
    });
    proc.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new Error('stdio server exited'));
      this.pending.clear();
    });
  }

  private onLine(line: string) {
    let msg: RpcMessage;
    try {
      msg = JSON.parse(line) as RpcMessage;
    } catch {
      return;
    }
    const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
    if (!p || !('result' in msg || 'error' in msg)) return;
    this.pending.delete(msg.id!);
    clearTimeout(p.timer);
    p.resolve(msg);
  }

  private request(method: string, params: object): Promise<RpcMessage> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer in ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.proc.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }

  async initialize() {
    const msg = await this.request('initialize', INITIALIZE_PARAMS);
    if (msg.error) throw new Error(`initialize: ${msg.error.message}`);
    this.proc.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  }

  async listTools() {
    checkListed(await this.request('tools/list', {}), this.tool);
  }

  async call(text: string) {
    checkEcho(await this.request('tools/call', { name: this.tool, arguments: { text } }), text);
  }

  async close() {}
}

/** What `n` callers did in one measurement. */
export interface Drive {
  latencies: number[];
  errors: number;
  firstError: string | undefined;
  elapsedMs: number;
}

/** `n` callers for one measurement: how many calls each made, and every latency. */
export async function drive(sessions: Caller[], n: number, seconds: number): Promise<Drive> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    sessions.slice(0, n).map(async (s, i) => {
      const text = `hello ${i}`;
      while (performance.now() < deadline) {
        const start = performance.now();
        try {
          await s.call(text);
          latencies.push(performance.now() - start);
        } catch (err) {
          errors++;
          firstError ??= String((err as Error)?.message ?? err);
          if (errors > 50 && latencies.length === 0) break;
          await sleep(5);
        }
      }
    }),
  );
  return { latencies, errors, firstError, elapsedMs: performance.now() - t0 };
}

/** `calls` calls in all, shared among `n` callers (a fixed amount of work, however long it takes). */
export async function driveCalls(sessions: Caller[], n: number, calls: number): Promise<Drive> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let left = calls;
  const t0 = performance.now();
  await Promise.all(
    sessions.slice(0, n).map(async (s, i) => {
      const text = `hello ${i}`;
      while (left > 0) {
        left--;
        const start = performance.now();
        try {
          await s.call(text);
          latencies.push(performance.now() - start);
        } catch (err) {
          errors++;
          firstError ??= String((err as Error)?.message ?? err);
        }
      }
    }),
  );
  return { latencies, errors, firstError, elapsedMs: performance.now() - t0 };
}
