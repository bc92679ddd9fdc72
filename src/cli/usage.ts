/** Every command's and subcommand's usage, keyed by its words: what `--help` prints. */
export const USAGE: Readonly<Record<string, string>> = {
  serve: 'Usage: portcullis serve --config FILE\n  run the gateway',
  wrap: `Usage: portcullis wrap --config FILE [--server NAME]
  speak MCP on stdin/stdout for a local client; --server exposes one upstream of the config`,
  demo: `Usage: portcullis demo [--port N] [--dir DIR] [--json]
  start on the embedded default (bundled upstreams, SQLite audit) and print a token and URL`,
  config: 'Usage: portcullis config check FILE | portcullis config schema',
  'config check':
    'Usage: portcullis config check FILE\n  validate a config file; warn of stdio upstreams the config does not pin',
  'config schema': 'Usage: portcullis config schema\n  print the config JSON Schema',
  policy: `Usage: portcullis policy <command> [options]
  check --config FILE [--tools TOOLS.json]
  test CASES.yaml [--config FILE] [--tools TOOLS.json]
  explain --config FILE --tool NAME [--args JSON] [--reason TEXT]
          [--principal JSON] [--time ISO] [--sensitive-read] [--tainted] [--tools TOOLS.json]`,
  'policy check': `Usage: portcullis policy check --config FILE [--tools TOOLS.json]
  parse the policies and validate them against the upstreams' tools`,
  'policy test': `Usage: portcullis policy test CASES.yaml [--config FILE] [--tools TOOLS.json]
  run YAML cases against their expected decisions; exit 1 on a mismatch`,
  'policy explain': `Usage: portcullis policy explain --config FILE --tool NAME [--args JSON] [--reason TEXT]
                            [--principal JSON] [--time ISO] [--sensitive-read] [--tainted] [--signed]
                            [--tools TOOLS.json]
  show the decision for one call and the policies that made it`,
  token:
    'Usage: portcullis token issue --config FILE --sub S [--tools a,b] [--prompts a,b] [--resources URI*,…] [--ttl 10m] --reason TEXT [--as NAME]',
  'token issue': `Usage: portcullis token issue --config FILE --sub S [--tools a,b] [--prompts a,b] [--resources URI*,…] [--ttl 10m] --reason TEXT
                             [--workload ID] [--json] [--as NAME]
  mint a gateway token naming the tools, prompts and resources (URI patterns) it may use;
  printed only once its issue is recorded in the audit log (as NAME, else as the account run as)`,
  revoke: `Usage: portcullis revoke --config FILE --jti X | --sub S | --workload ID [--reason TEXT] [--as NAME]
       portcullis revoke --config FILE --list [--json]
  refuse those tokens from the next call on, then record it in the audit log (exit 1 when it could not be);
  --list prints every revocation, oldest first (time, kind, value, reason)`,
  audit: `Usage: portcullis audit <command> --config FILE [options]
  verify [--key VKEY] [--checkpoint FILE]   recompute the tree, check every checkpoint
  checkpoint                                sign the current head if it grew; print the latest checkpoint
  proof --index N --out DIR                 write DIR/entry and DIR/proof (c2sp.org/tlog-proof)
  verify-proof DIR --key VKEY               check a receipt without the database (no --config)
  consistency --old FILE --out DIR          prove the log extends an old checkpoint
  export --tiles DIR                        write the log as c2sp.org/tlog-tiles
  tail [--principal P] [--tool T] [--decision D] [--limit N] [--follow]
  replay [--session ID] [--principal P] [--since T] [--key VKEY] [--json]
  policy [--hash sha256:…] [--json]          the policies a decision's policySetHash names, as recorded`,
  'audit verify': `Usage: portcullis audit verify --config FILE [--key VKEY] [--checkpoint FILE]
  recompute the tree and check every checkpoint`,
  'audit checkpoint': `Usage: portcullis audit checkpoint --config FILE
  sign the current head if it grew; print the latest checkpoint`,
  'audit proof': `Usage: portcullis audit proof --config FILE --index N --out DIR
  write DIR/entry and DIR/proof (c2sp.org/tlog-proof)`,
  'audit verify-proof': `Usage: portcullis audit verify-proof DIR --key VKEY
  check a receipt without the database`,
  'audit consistency': `Usage: portcullis audit consistency --config FILE --old FILE --out DIR
  prove the log extends an old checkpoint`,
  'audit export': `Usage: portcullis audit export --config FILE --tiles DIR
  write the log as c2sp.org/tlog-tiles`,
  'audit tail': `Usage: portcullis audit tail --config FILE [--principal P] [--tool T] [--decision D] [--limit N] [--follow]
  print the newest entries`,
  'audit policy': `Usage: portcullis audit policy --config FILE [--hash sha256:…] [--json]
  print the policy set a decision's policySetHash names (the last one that went live without --hash),
  as the log recorded it when it went live, checked against its entry; exit 1 when the log holds no
  such set (ERR_NOT_FOUND) or its texts were changed (ERR_AUDIT_TAMPERED)`,
  'audit replay': `Usage: portcullis audit replay --config FILE [--session ID] [--principal P] [--since T]
                             [--key VKEY] [--json]
  print the matching calls in log order, each entry proven against the latest signed checkpoint;
  at least one of --session, --principal, --since (ISO-8601, or a time ago: 15m, 2h, 7d);
  --key checks with a verifier key and signs nothing; exit 1 naming an entry that was tampered with`,
  attest: `Usage: portcullis attest <command>
  verify FILE (--jwks URL|FILE | --config FILE)   check a saved response's signed result;
                                                  with --config, also that the audit log holds the call
  rotate --config FILE                            a new result-signing key (running gateways take it
                                                  within a minute; the old one stays published)`,
  'attest rotate': `Usage: portcullis attest rotate --config FILE [--as NAME]
  add a result-signing key to attest.keyDir and retire the current one: running gateways sign with
  the new key within a minute; retired keys stay in the JWKS, so what they signed still verifies;
  the rotation is recorded in the audit log`,
  'attest verify': `Usage: portcullis attest verify FILE [--jwks URL|FILE] [--config FILE]
  check the attestation of a saved JSON-RPC response (or bare result) against a JWKS:
  --jwks from a URL (/.well-known/portcullis-attestation-jwks.json) or a file, else the config's attest.keyDir;
  --config also checks the audit log: the decision record at the attested index names the call,
  and its outcome record keeps the same result hash and key. Exit 0 ok, 1 with the error code`,
  approvals: `Usage: portcullis approvals <command> --config FILE [options]
  list [--all] [--json]                              the approvals waiting (--all: every one kept)
  show ID [--json]                                   one approval, with the arguments it would release
  approve ID --as NAME [--comment TEXT] [--args-hash H]   grant it as operator NAME
  deny ID --as NAME --comment TEXT                   deny it as operator NAME`,
  breakglass: `Usage: portcullis breakglass <command> --config FILE [options]
  open --scope S --ttl 15m --reason TEXT --as NAME   ask for a window (two other operators open it)
  approve ID --as NAME [--comment TEXT]              approve it as operator NAME; the second approval opens it
  close ID --as NAME [--comment TEXT]                close it now (or refuse a request)
  list [--all] [--json]                              the windows requested or open (--all: every one kept)
  scope: comma-separated tool:NAME (a trailing * matches a prefix), upstream:NAME, principal:ID or principal:user:SUB`,
  'breakglass open': `Usage: portcullis breakglass open --config FILE --scope S --ttl 15m --reason TEXT --as NAME
  ask for a break-glass window: while open, calls in its scope pass even when policy or approval refuse them;
  it needs two approvals by operators other than NAME, and closes itself after --ttl`,
  'breakglass approve': `Usage: portcullis breakglass approve ID --config FILE --as NAME [--comment TEXT]
  approve a requested window as operator NAME; the second approval opens it`,
  'breakglass close': `Usage: portcullis breakglass close ID --config FILE --as NAME [--comment TEXT]
  close an open window now, or refuse a request`,
  'breakglass list': `Usage: portcullis breakglass list --config FILE [--all] [--json]
  the windows requested or open (--all: every one the state store keeps)`,
  tools: `Usage: portcullis tools <command> --config FILE [options]
  list [--json]                                        every pinned tool: upstream, tier, pin state, findings
  approve UPSTREAM TOOL --as NAME                      show the diff and accept the tool's listed definition
  quarantine UPSTREAM TOOL --as NAME --reason TEXT     hide and refuse a tool until it is approved`,
  'tools list': `Usage: portcullis tools list --config FILE [--json]
  every pinned tool (and server instructions) with its upstream, tier, pin state and findings`,
  'tools approve': `Usage: portcullis tools approve UPSTREAM TOOL --config FILE --as NAME
  print the diff of the pinned definition against the new one, then accept it as operator NAME`,
  'tools quarantine': `Usage: portcullis tools quarantine UPSTREAM TOOL --config FILE --as NAME --reason TEXT
  hide a pinned tool and refuse calls to it until it is approved again`,
  servers: `Usage: portcullis servers <command> --config FILE [options]
  list [--json]                 every stdio upstream: where its pin comes from (config, first-use, operator, none), its state
  show NAME [--json]            what NAME would run now: each file and package hashed, and whether it matches its pin
  pin NAME --as NAME            pin what NAME would run now (first approval)
  approve NAME --as NAME        accept what NAME would run now in place of its pin (after a refusal)`,
  'servers list': `Usage: portcullis servers list --config FILE [--json]
  every stdio upstream with where its pin comes from, its state and any refused fingerprint`,
  'servers show': `Usage: portcullis servers show NAME --config FILE [--json]
  hash what NAME would run now and compare it with its pin; exit 1 when it does not match`,
  'servers pin': `Usage: portcullis servers pin NAME --config FILE --as NAME
  pin the hashes of what NAME would run now in the state store, as operator NAME`,
  'servers approve': `Usage: portcullis servers approve NAME --config FILE --as NAME
  accept what NAME would run now (a changed binary or package) in place of its pin, as operator NAME`,
  keys: `Usage: portcullis keys --config FILE | keys generate --origin NAME --out FILE | keys rotate --config FILE
  print the audit verifier key, write a new audit signer key, or rotate the gateway token key`,
  'keys generate': `Usage: portcullis keys generate --origin NAME --out FILE
  write a new audit signer key and print its verifier key`,
  'keys rotate': `Usage: portcullis keys rotate --config FILE [--as NAME]
  a new gateway signing key; the old one verifies tokens it signed for one more token lifetime;
  the rotation is recorded in the audit log`,
};

export const MAIN_USAGE = `Usage: portcullis <command> [options]

Commands:
  serve  --config FILE                 run the gateway
  wrap   --config FILE [--server NAME] speak MCP on stdin/stdout (for local clients)
  demo   [--port N] [--json]           start on the embedded default with bundled upstreams
  config check FILE                    validate a config file
  config schema                        print the config JSON Schema
  policy check|test|explain            validate policies, run policy test cases, explain a decision
  token issue --config FILE --sub S --tools a,b [--prompts, --resources] --reason TEXT   mint a gateway token
  revoke --config FILE --jti X | --sub S | --workload ID   refuse from the next call on
  approvals list|show|approve|deny --config FILE   decide calls held for approval (--as NAME)
  breakglass open|approve|close|list --config FILE   audited, dual-approved windows that fail open (--as NAME)
  tools  list|approve|quarantine --config FILE   pinned tool definitions (--as NAME)
  servers list|show|pin|approve --config FILE    pinned stdio server binaries and packages (--as NAME)
  keys rotate --config FILE            new gateway signing key (old one overlaps)
  audit  <verify|checkpoint|proof|verify-proof|consistency|export|tail|replay> --config FILE
  keys   --config FILE | generate --origin NAME --out FILE   audit verifier key
  attest verify FILE [--jwks URL|FILE] [--config FILE]   check a signed result (and that the log holds it)
  attest rotate --config FILE                            a new result-signing key; the old one stays published

Every command answers --help with its usage.
Exit codes: 0 ok, 1 check failed, 2 usage or config error.`;

const isHelp = (arg: string): boolean => arg === '--help' || arg === '-h';

/**
 * The usage to print when `argv` asks for help (`--help` or `-h` before any
 * `--`): the subcommand's when it names one, else the command's.
 */
export function helpFor(argv: readonly string[]): string | undefined {
  const end = argv.indexOf('--');
  const args = end === -1 ? argv : argv.slice(0, end);
  if (!args.some(isHelp)) return undefined;
  const [name, sub] = args;
  if (name === undefined || isHelp(name)) return MAIN_USAGE;
  if (sub !== undefined && USAGE[`${name} ${sub}`]) return USAGE[`${name} ${sub}`];
  return USAGE[name];
}
