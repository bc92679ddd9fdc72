import { constants } from 'node:fs';
import { access, open, realpath, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, delimiter, isAbsolute, join, resolve } from 'node:path';
import { npxPackage, npxRequest } from './npx.ts';
import { type InstalledPackage, packageBin, packageOf, UnverifiableLaunch } from './packages.ts';

/** How a stdio upstream is started, as the spawn sees it. */
export interface LaunchInput {
  readonly command: string;
  readonly args: readonly string[];
  /** Absolute. */
  readonly cwd: string;
  /** The child's own PATH, HOME and npm cache (what its spawn and npx resolve with). */
  readonly env: {
    readonly PATH?: string | undefined;
    readonly HOME?: string | undefined;
    readonly npm_config_cache?: string | undefined;
    /** Node's own options from the environment: code they load is not pinned, so a launch with them is refused. */
    readonly NODE_OPTIONS?: string | undefined;
  };
}

/**
 * `command`: the file the command names (a link resolved to its target);
 * `interpreter`: what that file's `#!` line runs; `script`: the file an
 * interpreter (node, python, …) or npx runs; `preload`: a file node is told
 * to load before it (`-r`, `--require`, `--import`, `--loader`).
 */
export type FileRole = 'command' | 'interpreter' | 'script' | 'preload';

export interface LaunchFile {
  readonly role: FileRole;
  /** Real path: every link resolved. */
  readonly path: string;
}

/** What a launch runs: the files to hash and, for npm code, its package. */
export interface LaunchPlan {
  /** The absolute path to spawn in place of a bare command name, so what runs is what was checked. */
  readonly executable: string;
  readonly files: readonly LaunchFile[];
  readonly package?: InstalledPackage | undefined;
  /** The spec npx was given, when npx runs it (an inexact one may be fetched anew at start). */
  readonly npxSpec?: string | undefined;
}

const INTERPRETER = /^(node|nodejs|bun|deno|python[0-9.]*|pypy[0-9.]*|ruby|perl|bash|sh|dash|zsh)$/;
/** Options of these interpreters that take the next word as their value (not a script). */
const VALUE_OPTIONS = new Set([
  '-r',
  '--require',
  '--import',
  '--loader',
  '--experimental-loader',
  '-C',
  '--conditions',
  '--input-type',
  '--env-file',
  '--title',
  '-W',
  '-X',
]);
/** Options after which no script file follows: the code is in the arguments (the config) or a module path. */
const NO_SCRIPT = new Set(['-e', '--eval', '-p', '--print', '-c', '-m', '-']);

/**
 * Resolves what a launch will execute, exactly as the spawn would: a bare
 * command through the child's PATH, a relative one against its working
 * folder, links to their targets; an interpreter's script argument; npx's
 * installed package; the package a script lives in.
 */
export async function resolveLaunch(input: LaunchInput): Promise<LaunchPlan> {
  const executable = await findExecutable(input.command, input);
  const command = await realpath(executable);
  const files: LaunchFile[] = [{ role: 'command', path: command }];
  const shebang = await interpreterLine(command, input);
  if (shebang) files.push({ role: 'interpreter', path: shebang.path });
  const runtime = shebang?.name ?? basename(command);
  if (basename(executable) === 'npx' || basename(command) === 'npx-cli.js') {
    const req = npxRequest(input.args);
    const pkg = await npxPackage(req, {
      cwd: input.cwd,
      home: input.env.HOME,
      npmCache: input.env.npm_config_cache,
    });
    files.push({ role: 'script', path: await realpath(await packageBin(pkg, req.command)) });
    return { executable, files, package: pkg, npxSpec: req.packages[0] };
  }
  const script = INTERPRETER.test(runtime) ? scriptArgument(runtime, input.args) : undefined;
  if (script !== undefined) {
    const path = await realpath(resolve(input.cwd, script)).catch(() => {
      throw new UnverifiableLaunch(`script ${script} not found`);
    });
    files.push({ role: 'script', path });
  }
  if (INTERPRETER.test(runtime)) files.unshift(...(await preloads(input)));
  const last = files.at(-1)!;
  const code = last.role === 'script' ? last.path : command;
  return { executable, files, package: await packageOf(code) };
}

/** Options whose value node loads and runs before the script. */
const PRELOAD_OPTIONS = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader']);

/**
 * Every file an interpreter is told to load before its script, so a changed
 * hook is caught like a changed script (a module name as node resolves it
 * from the working folder). Preloads through NODE_OPTIONS are refused: they are not pinned here.
 */
async function preloads(input: LaunchInput): Promise<LaunchFile[]> {
  if (input.env.NODE_OPTIONS) throw new UnverifiableLaunch('NODE_OPTIONS may load code that is not pinned');
  const values: string[] = [];
  for (let i = 0; i < input.args.length; i++) {
    const arg = input.args[i]!;
    if (arg === '--' || !arg.startsWith('-')) break;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!PRELOAD_OPTIONS.has(name)) {
      if (VALUE_OPTIONS.has(arg)) i++;
      continue;
    }
    const value = eq > 0 ? arg.slice(eq + 1) : input.args[++i];
    if (value !== undefined) values.push(value);
  }
  const files: LaunchFile[] = [];
  for (const value of values) files.push({ role: 'preload', path: await preloadFile(value, input.cwd) });
  return files;
}

/** The file a preload names: a path against the working folder, or a module as node resolves it from there. */
async function preloadFile(value: string, cwd: string): Promise<string> {
  let file: string;
  try {
    if (value.startsWith('file:')) file = new URL(value).pathname;
    else if (/^\.{0,2}\//.test(value)) file = resolve(cwd, value);
    else file = createRequire(join(cwd, 'noop.js')).resolve(value);
  } catch {
    throw new UnverifiableLaunch(`preloaded module ${value} cannot be found from ${cwd}`);
  }
  return realpath(file).catch(() => {
    throw new UnverifiableLaunch(`preloaded file ${value} not found`);
  });
}

/** The command as the spawn finds it: through PATH when it names no folder (an empty PATH entry is the working folder). */
async function findExecutable(command: string, input: LaunchInput): Promise<string> {
  if (command.includes('/')) {
    const path = resolve(input.cwd, command);
    if (await isExecutable(path)) return path;
    throw new UnverifiableLaunch(`${command} is not an executable file`);
  }
  for (const dir of (input.env.PATH ?? '').split(delimiter)) {
    const path = resolve(input.cwd, dir, command);
    if (await isExecutable(path)) return path;
  }
  throw new UnverifiableLaunch(`${command} not found on PATH`);
}

const isExecutable = async (path: string): Promise<boolean> =>
  (await stat(path).then(
    (s) => s.isFile(),
    () => false,
  )) &&
  (await access(path, constants.X_OK).then(
    () => true,
    () => false,
  ));

/** The interpreter a `#!` line names (`#!/usr/bin/env node` through PATH), with its name. */
async function interpreterLine(
  file: string,
  input: LaunchInput,
): Promise<{ path: string; name: string } | undefined> {
  const handle = await open(file, 'r');
  const head = Buffer.alloc(256);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  if (head[0] !== 0x23 || head[1] !== 0x21) return undefined;
  const line = head.toString('latin1', 2).split('\n')[0]!.trim();
  const words = line.split(/\s+/);
  let program = words[0]!;
  if (basename(program) === 'env')
    program = words.slice(1).find((w) => !w.startsWith('-') && !w.includes('=')) ?? '';
  if (!program) throw new UnverifiableLaunch(`${file} has a #! line that names no interpreter`);
  const path = isAbsolute(program) ? program : await findExecutable(program, input);
  return { path: await realpath(path), name: basename(program) };
}

/** The script an interpreter is asked to run: its first argument that is not an option (bun and deno after `run`). */
export function scriptArgument(runtime: string, args: readonly string[]): string | undefined {
  let rest = args;
  if ((runtime === 'bun' || runtime === 'deno') && rest[0] === 'run') rest = rest.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--') return rest[i + 1];
    if (NO_SCRIPT.has(arg)) return undefined;
    if (VALUE_OPTIONS.has(arg)) i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}
