/** Versions that use `initialize` and (over HTTP) `Mcp-Session-Id`. */
export const LEGACY_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'] as const;
export const LATEST_LEGACY = '2025-11-25';
/** Stateless era: no initialize, `server/discover`, per-request `_meta` version. */
export const MODERN_VERSIONS = ['2026-07-28'] as const;
export const LATEST_MODERN = '2026-07-28';
/** A legacy HTTP request without `MCP-Protocol-Version` is taken as this version (spec 2025-06-18). */
export const DEFAULT_HTTP_LEGACY_VERSION = '2025-03-26';

export type Era = 'legacy' | 'modern';

export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  logLevel: 'io.modelcontextprotocol/logLevel',
} as const;

export const isLegacyVersion = (v: string): boolean => (LEGACY_VERSIONS as readonly string[]).includes(v);
export const isModernVersion = (v: string): boolean => (MODERN_VERSIONS as readonly string[]).includes(v);

export const GATEWAY_INFO = { name: 'portcullis', version: '0.1.0' } as const;
