/**
 * The bodies an approval webhook sends: the event as JSON, or a Slack
 * incoming-webhook message (`text` for notifications, `blocks` for the
 * channel) that tells the approver what is asked and how to decide.
 */
import type { ApprovalEvent, ApprovalEventType } from './types.ts';

export type WebhookFormat = 'json' | 'slack';

export function webhookBody(event: ApprovalEvent, format: WebhookFormat): string {
  if (format === 'slack') return JSON.stringify(slackMessage(event));
  const { type, time, id, summary, data } = event;
  return JSON.stringify({ type, time, id, summary, data });
}

const TITLES: Record<ApprovalEventType, string> = {
  'approval.requested': 'Approval requested',
  'approval.granted': 'Approval granted',
  'approval.denied': 'Approval denied',
  'approval.expired': 'Approval expired',
  'breakglass.requested': 'Break-glass requested',
  'breakglass.opened': 'Break-glass opened',
  'breakglass.used': 'Break-glass used',
  'breakglass.closed': 'Break-glass closed',
  'tool.quarantined': 'Tool quarantined',
  'server.refused': 'Upstream server refused to start',
};

/** Shown when the event's data has them, in this order. */
const FIELDS: readonly (readonly [key: string, label: string])[] = [
  ['tool', 'Tool'],
  ['principal', 'Caller'],
  ['reason', 'Reason'],
  ['required', 'Approvals needed'],
  ['expiresAt', 'Expires'],
];

/** Slack caps a section's text at 3000 characters. */
const MAX_TEXT = 2900;

export function slackMessage(event: ApprovalEvent): { text: string; blocks: unknown[] } {
  const title = TITLES[event.type];
  const fields = FIELDS.flatMap(([key, label]) => {
    const value = fieldValue(key, event.data[key]);
    return value === undefined ? [] : [{ type: 'mrkdwn', text: `*${label}*\n${slackEscape(value)}` }];
  });
  const commands = decisionCommands(event);
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: title } },
    { type: 'section', text: { type: 'mrkdwn', text: slackEscape(clip(event.summary)) } },
  ];
  if (fields.length > 0) blocks.push({ type: 'section', fields });
  if (commands.length > 0) {
    const lines = commands.map((c) => `\`${slackEscape(c)}\``).join('\n');
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(`Decide with:\n${lines}`) } });
  }
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: slackEscape(`${event.type} · ${event.id}`) }],
  });
  return { text: slackEscape(clip(`${title}: ${event.summary}`)), blocks };
}

/**
 * The CLI commands that decide a pending request: the event's own
 * `approveCommand` / `denyCommand` when its data carries them (with the
 * operator's `--config`), else the plain form.
 */
export function decisionCommands(event: ApprovalEvent): string[] {
  const given = (key: string): string | undefined =>
    typeof event.data[key] === 'string' ? (event.data[key] as string) : undefined;
  if (event.type === 'approval.requested')
    return [
      given('approveCommand') ?? `portcullis approvals approve ${event.id}`,
      given('denyCommand') ?? `portcullis approvals deny ${event.id}`,
    ];
  if (event.type === 'breakglass.requested')
    return [given('approveCommand') ?? `portcullis breakglass approve ${event.id}`];
  if (event.type === 'tool.quarantined') return [given('approveCommand') ?? 'portcullis tools approve'];
  if (event.type === 'server.refused') return [given('approveCommand') ?? 'portcullis servers approve'];
  return [];
}

function fieldValue(key: string, value: unknown): string | undefined {
  if (key === 'expiresAt' && typeof value === 'number') return new Date(value).toISOString();
  if (typeof value === 'string' || typeof value === 'number') return clip(String(value), 200);
  return undefined;
}

const clip = (text: string, max = MAX_TEXT): string => (text.length > max ? `${text.slice(0, max)}…` : text);

/** Slack reads `&`, `<` and `>` as control characters (links, mentions) in every text. */
const slackEscape = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
