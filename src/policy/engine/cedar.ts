// The one place that loads the engine: the package root imports `.wasm` as ESM, which plain Node refuses.

export type {
  AuthorizationAnswer,
  DetailedError,
  EntityJson,
  PolicyJson,
} from '@cedar-policy/cedar-wasm/nodejs';
export * as cedar from '@cedar-policy/cedar-wasm/nodejs';
