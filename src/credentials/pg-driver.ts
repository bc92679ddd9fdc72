import { createRequire } from 'node:module';
import type pgModule from 'pg';

/**
 * The `pg` driver, loaded on first use: a gateway with no postgres-role
 * upstream never loads it (pg is CommonJS, so `require` stays synchronous).
 */
let driver: typeof pgModule | undefined;
export const pgDriver = (): typeof pgModule => {
  driver ??= createRequire(import.meta.url)('pg') as typeof pgModule;
  return driver;
};
