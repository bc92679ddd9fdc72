/** Incremental parser for `text/event-stream` (WHATWG HTML §9.2): yields each event's data. */
export class SseParser {
  /** The start of a line whose end has not arrived yet. */
  private buffer = '';
  /** The last chunk ended in CR: an LF starting the next one is the same line end. */
  private afterCr = false;
  private data: string[] = [];
  private dataChars = 0;
  private eventId: string | undefined;
  private readonly onEvent: (data: string, id: string | undefined) => void;

  constructor(onEvent: (data: string, id: string | undefined) => void) {
    this.onEvent = onEvent;
  }

  /**
   * Only the new chunk is searched for line ends: a long event (a list of 1,000 tools
   * arrives in dozens of chunks) is not rescanned from its start at every chunk.
   */
  push(chunk: string): void {
    if (chunk === '') return;
    let start = this.afterCr && chunk.startsWith('\n') ? 1 : 0;
    this.afterCr = false;
    const ends = /\r\n|\r|\n/g;
    ends.lastIndex = start;
    for (let m = ends.exec(chunk); m !== null; m = ends.exec(chunk)) {
      const line = this.buffer + chunk.slice(start, m.index);
      this.buffer = '';
      start = m.index + m[0].length;
      if (m[0] === '\r' && start === chunk.length) this.afterCr = true;
      this.line(line);
    }
    this.buffer += chunk.slice(start);
  }

  /** Characters of the event not yet complete: what a reader bounds, so a stream cannot grow it without end. */
  get pendingChars(): number {
    return this.buffer.length + this.dataChars;
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.onEvent(this.data.join('\n'), this.eventId);
      this.data = [];
      this.dataChars = 0;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.dataChars += value.length + 1;
    } else if (field === 'id') this.eventId = value;
  }
}

export function sseEvent(data: string, id?: string): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: message\ndata: ${data}\n\n`;
}
