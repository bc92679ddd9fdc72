// oidc-provider ships no types; the tests use only its constructor and `callback()`.
declare module 'oidc-provider' {
  export default class Provider {
    constructor(issuer: string, configuration: Record<string, unknown>);
    callback(): import('node:http').RequestListener;
  }
}
