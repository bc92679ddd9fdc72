// oidc-provider ships no types; the tests use only what is declared here.
declare module 'oidc-provider' {
  interface OidcClient {
    readonly clientId: string;
  }
  /** An access token as the provider's models build one (only what the tests set and read). */
  class AccessToken {
    constructor(fields: { accountId: string; client: OidcClient; gty?: string; scope?: string | undefined });
    resourceServer: unknown;
    readonly scope?: string;
    readonly tokenType: string;
    readonly expiration: number;
    save(): Promise<string>;
  }
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): import('node:http').RequestListener;
    readonly AccessToken: typeof AccessToken;
    readonly ResourceServer: new (
      identifier: string,
      info: Record<string, unknown>,
    ) => unknown;
    /** An extension grant at the token endpoint: `params` are the parameters it takes. */
    registerGrantType(name: string, handler: (ctx: never) => Promise<void>, params?: readonly string[]): void;
  }
  /** OAuth error answers a grant handler throws. */
  export const errors: {
    InvalidRequest: new (description: string) => Error;
    InvalidGrant: new (description: string) => Error;
    InvalidTarget: new (description: string) => Error;
  };
}
