import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PortcullisError } from '../errors.ts';

const REF = /^(env|file):(.+)$/;

export const isSecretRef = (value: string): boolean => REF.test(value);

/**
 * Resolves `env:NAME` / `file:PATH` references; plain strings pass through.
 * Errors name the reference, never a value.
 */
export function resolveValue(value: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const m = REF.exec(value);
  if (!m) return value;
  const [, kind, target] = m as unknown as [string, 'env' | 'file', string];
  if (kind === 'env') {
    const v = env[target];
    if (v === undefined) throw unresolved(value, 'environment variable is not set');
    return v;
  }
  try {
    return readFileSync(resolve(baseDir, target), 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw unresolved(value, 'file cannot be read', err);
  }
}

const unresolved = (ref: string, why: string, cause?: unknown): PortcullisError =>
  new PortcullisError('ERR_SECRET_UNRESOLVED', `Secret reference ${ref}: ${why}`, { cause });
