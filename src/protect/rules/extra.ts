/**
 * The project's own secret rules, for token formats gitleaks' default set
 * does not know (or knows in an older form), for credentials inside URLs and
 * connection strings, and for private keys whose armor is damaged. A rule
 * that shares a family with a gitleaks rule shares its id, so the types a
 * policy sees stay gitleaks' names. Formats with a distinctive prefix carry
 * no entropy threshold: masking a placeholder costs nothing, missing a key
 * does. gitleaks' global allowlist does not apply here; each rule has its own.
 */
import type { RuleData } from '../types.ts';

/** A token ends where its alphabet does; RE2 has no lookahead, so the next character is matched (or the end). */
const END = String.raw`(?:[^\w-]|$)`;
/** A token starts where a word does, or after a digit or underscore (a prefix glued to a name). */
const START_NOT_LETTER = '(?:^|[^A-Za-z])';

const URL_PASSWORD_PLACEHOLDER = String.raw`(?i)^(?:my)?pass(?:word|wd)\d*$|your[_-]?pass|replace|changeme|placeholder|^<.*>$|^\$|^\{|^%\w+%$|^.{1,3}$`;

/** After `://`: a `:` and then an `@` before the host's first `/`, space or quote (most URLs have no credentials). */
function credentialsFollow(text: string, _start: number, end: number): boolean {
  let colon = false;
  const stop = Math.min(text.length, end + 400);
  for (let i = end; i < stop; i++) {
    const c = text.charCodeAt(i);
    if (c === 58) colon = true;
    else if (c === 64) return colon;
    else if (c === 47 || c <= 32 || c === 34 || c === 39 || c === 96 || c === 60 || c === 62) return false;
  }
  return false;
}

/** `scheme://user:password@host`: the password is the secret, unless it repeats the user or is a placeholder. */
const urlCredentials: RuleData = {
  id: 'url-credentials',
  regex: String.raw`(?i)\b[a-z][a-z0-9+.-]{1,30}://([^\s:/@'"\x60<>(){}$]{1,64}):([^\s/'"\x60<>]{1,128})@[a-z0-9_\[-]`,
  before: 32,
  secretGroup: 2,
  entropy: 1,
  keywords: ['://'],
  allowlists: [{ regexes: [URL_PASSWORD_PLACEHOLDER] }],
  near: credentialsFollow,
  reject: (match) => {
    const m = /:\/\/([^:]*):(.*)@/.exec(match);
    return m !== null && m[1] === m[2];
  },
};

export const EXTRA_RULES: readonly RuleData[] = [
  urlCredentials,
  {
    id: 'private-key',
    // Armor whose END line is missing or damaged: BEGIN and at least four base64 runs.
    regex: String.raw`-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----((?:(?:\\[rn]|\s)*[A-Za-z0-9+/=]{16,}){4,}(?:(?:\\[rn]|\s)*-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-{1,5})?)`,
    keywords: ['-----begin'],
    after: 65_536,
  },
  {
    id: 'gcp-service-account-key',
    regex: String.raw`(?i)private_key['"]?\s{0,3}[:=]\s{0,3}['"]?(-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY-----(?:\\[rn]|[\sA-Za-z0-9+/=]){64,})`,
    keywords: ['private_key'],
    after: 65_536,
  },
  {
    id: 'anthropic-api-key',
    regex: String.raw`\b(sk-ant-(?:api|admin)\d{2}-[\w-]{80,120}AA)${END}`,
    keywords: ['sk-ant-'],
  },
  {
    id: 'azure-ad-id',
    regex: String.raw`(?i)(?:azure|\bad|aad|arm|entra)[_-]?(?:tenant|client)[_-]?id['"]?\s{0,3}[:=]\s{0,3}['"]?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b`,
    keywords: ['tenant', 'client'],
  },
  {
    id: 'cloudflare-api-token',
    regex: String.raw`\b(cf(?:at|ut|k)_[A-Za-z0-9]{40}[0-9a-f]{8})\b`,
    keywords: ['cfat_', 'cfut_', 'cfk_'],
  },
  { id: 'databricks-api-token', regex: String.raw`\b(dapi[a-fA-F0-9]{32}(?:-\d)?)\b`, keywords: ['dapi'] },
  { id: 'docker-pat', regex: String.raw`\b(dckr_pat_[\w-]{27,})${END}`, keywords: ['dckr_pat_'] },
  { id: 'figma-pat', regex: String.raw`\b(figd_[\w-]{40,})${END}`, keywords: ['figd_'] },
  {
    id: 'github-app-token',
    regex: String.raw`\b(ghs_\d+_[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,})`,
    keywords: ['ghs_'],
  },
  {
    id: 'grafana-service-account-token',
    regex: String.raw`\b(glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})\b`,
    keywords: ['glsa_'],
  },
  { id: 'groq-api-key', regex: String.raw`\b(gsk_[A-Za-z0-9]{52})\b`, keywords: ['gsk_'] },
  { id: 'huggingface-access-token', regex: String.raw`\b(hf_[A-Za-z]{34})\b`, keywords: ['hf_'] },
  { id: 'notion-api-token', regex: String.raw`\b(ntn_[0-9]{11}[A-Za-z0-9]{35})\b`, keywords: ['ntn_'] },
  {
    id: 'secp256k1-private-key',
    regex: String.raw`\b0x([0-9a-fA-F]{64})\b`,
    entropy: 3,
    keywords: ['0x'],
  },
  {
    id: 'shopify-access-token',
    regex: String.raw`\b(shp(?:ss|at|ca|pa)_[A-Za-z0-9]{32,})\b`,
    keywords: ['shpss_', 'shpat_', 'shpca_', 'shppa_'],
  },
  {
    id: 'slack-webhook-url',
    regex: String.raw`(https?://hooks\.slack\.com/(?:services|workflows|triggers)/\w+/\w+/\w+)`,
    keywords: ['hooks.slack.com'],
  },
  {
    id: 'stripe-access-token',
    regex: String.raw`\b((?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{24,99})\b`,
    keywords: ['sk_live', 'sk_test', 'sk_prod', 'rk_live', 'rk_test', 'rk_prod'],
  },
  {
    id: 'tailscale-key',
    regex: String.raw`${START_NOT_LETTER}(tskey-[a-z]+-[A-Za-z0-9]{6,}-[A-Za-z0-9]{16,})\b`,
    keywords: ['tskey-'],
  },
  {
    id: 'vercel-token',
    regex: String.raw`\b(vc[pikar]_[A-Za-z0-9]{24,})\b`,
    keywords: ['vcp_', 'vci_', 'vck_', 'vca_', 'vcr_'],
  },
];
