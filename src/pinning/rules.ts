/**
 * The text heuristics of the poisoning scanner: each rule is one way a
 * description, schema text, server instruction or tool result talks to the
 * model behind the user's back. Every pattern is bounded (no nested
 * quantifiers, spans of at most a sentence), so a long text costs linear time.
 */
export interface TextRule {
  readonly id: string;
  /** What one hit adds to the score (a rule counts once per definition or result). */
  readonly score: number;
  /**
   * Lower-case words every hit contains: the pattern runs only on text that
   * holds one (a case-insensitive alternation in a regex costs ten times more).
   */
  readonly anchors: readonly string[];
  readonly pattern: RegExp;
}

export const TEXT_RULES: readonly TextRule[] = [
  {
    // <IMPORTANT>, <SYSTEM>, [INST] blocks: text addressed to the model, not to a reader.
    id: 'model-directive',
    anchors: ['<', '[', 'before', 'prior'],
    score: 3,
    pattern:
      /<\s*\/?\s*(?:important|system|instructions?|secret|hidden|critical|admin|assistant)\b[^<>\n]{0,40}>|\[\/?(?:INST|SYSTEM)\]|\b(?:before|prior to)\s+(?:using|calling|invoking|running)\s+(?:this|the|any)\b[^.\n]{0,30}\b(?:tool|function)\b[^.\n]{0,20}\b(?:must|should|need to|have to|first)\b/i,
  },
  {
    id: 'instruction-override',
    anchors: ['ignore', 'disregard', 'forget', 'override'],
    score: 5,
    pattern:
      /\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|earlier|other|system|original)\s+(?:instructions?|prompts?|rules|directions|guidelines)/i,
  },
  {
    id: 'conceal-from-user',
    anchors: ['user', 'human', 'operator'],
    score: 5,
    pattern:
      /\b(?:do\s*n[o']?t|never|without)\s+(?:tell|telling|mention|mentioning|inform|informing|reveal|revealing|notify|notifying|show|showing|alert|alerting|let|letting)\b[^.\n]{0,80}\b(?:user|human|operator)s?\b|\b(?:user|human)\s+(?:must|should|may)\s+(?:not|never)\s+(?:know|see|notice|be told)\b/i,
  },
  {
    // Files no tool description has reason to send the model to.
    id: 'credential-access',
    anchors: [
      'ssh',
      'id_',
      '.aws',
      'npmrc',
      'netrc',
      'pgpass',
      'git-cred',
      '.env',
      '/etc/',
      'mcp.json',
      'claude_desktop',
      '.cursor',
      '.kube',
      '.docker',
      'wallet',
    ],
    score: 4,
    pattern:
      /~\/\.ssh|\.ssh\/|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws\/credentials|\.npmrc\b|\.netrc\b|\.pgpass\b|\.git-credentials|(?:^|[\s'"`(/~])\.env\b|\/etc\/(?:passwd|shadow)\b|\bmcp\.json\b|claude_desktop_config|\.cursor\/|\.kube\/config|\.docker\/config\.json|\bwallet\.dat\b/i,
  },
  {
    id: 'secret-words',
    anchors: ['key', 'token', 'password', 'credential', 'secret'],
    score: 1,
    pattern:
      /\b(?:api[\s_-]?keys?|private[\s_-]?keys?|access[\s_-]?tokens?|passwords?|credentials?|secrets?)\b/i,
  },
  {
    // "pass its content as 'sidenote'", "put the conversation history in the notes parameter".
    id: 'copy-into-arguments',
    anchors: [
      'content',
      'text',
      'value',
      'conversation',
      'histor',
      'messages',
      'prompt',
      'credential',
      'secret',
      'key',
      'token',
      'password',
    ],
    score: 3,
    pattern:
      /\b(?:pass|put|send|include|insert|copy|provide|append|embed|add)\b[^.\n]{0,60}?\b(?:(?:its|their|the\s+file'?s?)\s+(?:content|contents|text|value)|conversation|chat\s+history|message\s+history|previous\s+messages|system\s+prompt|credentials?|secrets?|private\s+keys?|api\s+keys?|tokens?|passwords?)\b[^.\n]{0,40}?\b(?:as|in|into|inside|via|to)\b/i,
  },
  {
    id: 'exfiltration-target',
    anchors: ['@'],
    score: 2,
    pattern:
      /\b(?:send|forward|email|upload|post|bcc|cc)\b[^.\n]{0,40}?\b(?:to|at)\s+[\w.+-]+@[\w-]+\.[\w.]+/i,
  },
];

/** Every rule's anchors in one pattern (longest first), so a text is searched for all of them in one pass. */
export const ANCHORS = new RegExp(
  [...new Set(TEXT_RULES.flatMap((r) => r.anchors))]
    .sort((a, b) => b.length - a.length)
    .map((w) => w.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
    .join('|'),
  'g',
);
