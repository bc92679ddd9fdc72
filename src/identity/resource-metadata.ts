import type { TokenIdentityConfig } from './config.ts';
import type { AuthError } from './errors.ts';

/**
 * The gateway as an OAuth protected resource (RFC 9728): its metadata
 * document, and the `WWW-Authenticate` challenge that points callers at it.
 */
export class ProtectedResource {
  private readonly resourcePath: string;
  private readonly metadataUrl: string;
  private readonly scopes: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>>;

  constructor(cfg: TokenIdentityConfig) {
    const resource = new URL(cfg.resource);
    this.resourcePath = resource.pathname === '/' ? '' : resource.pathname;
    this.metadataUrl = `${resource.origin}/.well-known/oauth-protected-resource${this.resourcePath}`;
    this.scopes = [...new Set([...cfg.requiredScopes, ...cfg.issuers.flatMap((i) => i.requiredScopes)])];
    this.metadata = {
      resource: cfg.resource,
      authorization_servers: cfg.issuers.map((i) => i.issuer),
      bearer_methods_supported: ['header'],
      ...(this.scopes.length > 0 ? { scopes_supported: this.scopes } : {}),
      resource_name: 'Portcullis MCP gateway',
    };
  }

  /** The `WWW-Authenticate` value for a refusal. */
  challenge(err: AuthError): string {
    const parts = [`resource_metadata="${this.metadataUrl}"`];
    if (err.reason === 'insufficient_scope') parts.unshift('error="insufficient_scope"');
    else if (err.reason === 'bad_request') parts.unshift('error="invalid_request"');
    else if (err.reason !== 'missing') parts.unshift('error="invalid_token"');
    if (this.scopes.length > 0) parts.push(`scope="${this.scopes.join(' ')}"`);
    return `Bearer ${parts.join(', ')}`;
  }

  /** True for both the bare and the path-suffixed metadata location. */
  servesMetadataAt(path: string): boolean {
    return (
      path === '/.well-known/oauth-protected-resource' ||
      path === `/.well-known/oauth-protected-resource${this.resourcePath}`
    );
  }
}
