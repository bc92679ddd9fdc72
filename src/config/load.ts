import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parse as parseYaml, YAMLError } from 'yaml';
import type { z } from 'zod';
import { ConfigError, PortcullisError } from '../errors.ts';
import { type Config, configSchema } from './schema.ts';

export interface LoadedConfig {
  config: Config;
  /** Directory of the config file: relative paths in it resolve from here. */
  baseDir: string;
  /** The config file itself, when it came from one (sandboxes hide it). */
  path?: string;
}

export function loadConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PortcullisError('ERR_CONFIG_UNREADABLE', `Cannot read config ${path}`, { cause: err });
  }
  return { config: parseConfigText(text, path), baseDir: dirname(resolve(path)), path: resolve(path) };
}

export function parseConfigText(text: string, source = 'config'): Config {
  return validateConfig(parseYamlText(text, source) ?? {}, source);
}

/** YAML that does not parse: `FILE:LINE:COL: message`, one line, where the parser stopped. */
export class YamlSyntaxError extends ConfigError {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  constructor(file: string, line: number, col: number, reason: string, cause: unknown) {
    super(`${file}:${line}:${col}: ${reason}`, [{ path: '', message: reason }], cause);
    this.file = file;
    this.line = line;
    this.col = col;
  }
}

/** Parses YAML (duplicate keys refused); a syntax error names the file, line and column. */
export function parseYamlText(text: string, source: string): unknown {
  const lineCounter = new LineCounter();
  try {
    return parseYaml(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  } catch (err) {
    if (!(err instanceof YAMLError)) throw err;
    const { line, col } = lineCounter.linePos(err.pos[0]);
    throw new YamlSyntaxError(source, line, col, err.message.replace(/\s+/g, ' ').trim(), err);
  }
}

export function validateConfig(raw: unknown, source = 'config'): Config {
  const parsed = configSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map(describeIssue);
  const lines = issues.map((i) => `  ${i.path || '(root)'}: ${i.message}`).join('\n');
  throw new ConfigError(`${source} is invalid:\n${lines}`, issues);
}

function describeIssue(issue: z.core.$ZodIssue): { path: string; message: string } {
  const base = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    // Point at the exact unknown key, not only its parent.
    const keys = issue.keys;
    return { path: [base, keys[0]].filter(Boolean).join('.'), message: `unknown key(s): ${keys.join(', ')}` };
  }
  return { path: base, message: issue.message };
}
