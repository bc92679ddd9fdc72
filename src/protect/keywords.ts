/**
 * Aho-Corasick over a fixed set of literals, case-insensitive, as a dense
 * automaton: one table step per UTF-16 unit of the text, whatever the number
 * of literals. It is the one pass every string gets before any regex runs.
 */

/** Words are matched lowercased, one UTF-16 unit to one (ASCII folding is exact; other scripts fold where lowercase keeps the length). */
const fold = (word: string): string => {
  const lower = word.toLowerCase();
  return lower.length === word.length ? lower : word;
};

export class KeywordSet {
  readonly words: readonly string[];
  /** Character class of each UTF-16 unit; 0 for units in no word. */
  readonly classOf: Uint16Array;
  /**
   * The automaton with states pre-multiplied by the class count: the next
   * state is `delta[state + class]`, no multiplication per character.
   */
  readonly delta: Int32Array;
  /**
   * States where some word ends are numbered last: a state at or past this
   * one (pre-multiplied) has output, a compare with no table behind it.
   */
  readonly firstOutput: number;
  /** Classes per state: a state number times this is its row in `delta`. */
  readonly width: number;
  /** Word ids ending at each output state (through the failure links too), as ranges into `outIds`. */
  private readonly outStart: Int32Array;
  private readonly outIds: Int32Array;

  constructor(words: readonly string[]) {
    this.words = words.map(fold);
    const { classOf, width } = charClasses(this.words);
    this.classOf = classOf;
    this.width = width;
    const trie = buildTrie(this.words, classOf, width);
    const linked = linkFailures(trie, width);
    const { delta, outputs, firstOutput } = outputsLast(linked.delta, linked.outputs, width);
    for (let i = 0; i < delta.length; i++) delta[i] = delta[i]! * width;
    this.delta = delta;
    this.firstOutput = firstOutput * width;
    const lists = outputs.slice(firstOutput);
    this.outStart = new Int32Array(lists.length + 1);
    const flat: number[] = [];
    lists.forEach((ids, k) => {
      this.outStart[k] = flat.length;
      flat.push(...ids);
    });
    this.outStart[lists.length] = flat.length;
    this.outIds = Int32Array.from(flat);
  }

  /** Calls `hit(wordId, end)` for every occurrence (end exclusive), in order of `end`. */
  scan(text: string, hit: (word: number, end: number) => void): void {
    const { classOf, delta, firstOutput } = this;
    const n = text.length;
    let state = 0;
    for (let i = 0; i < n; i++) {
      state = delta[state + classOf[text.charCodeAt(i)]!]!;
      if (state >= firstOutput) this.emit(state, i + 1, hit);
    }
  }

  /** Calls `hit` for each word ending at `end` in (pre-multiplied, output) `state`. */
  emit(state: number, end: number, hit: (word: number, end: number) => void): void {
    const k = (state - this.firstOutput) / this.width;
    for (let j = this.outStart[k]!; j < this.outStart[k + 1]!; j++) hit(this.outIds[j]!, end);
  }

  /** Appends `word, end` pairs for each word ending at `end` in (pre-multiplied, output) `state`. */
  pushHits(state: number, end: number, hits: number[]): void {
    const k = (state - this.firstOutput) / this.width;
    for (let j = this.outStart[k]!; j < this.outStart[k + 1]!; j++) hits.push(this.outIds[j]!, end);
  }

  /** Whether any word occurs in `text`. */
  test(text: string): boolean {
    const { classOf, delta, firstOutput } = this;
    let state = 0;
    for (let i = 0; i < text.length; i++) {
      state = delta[state + classOf[text.charCodeAt(i)]!]!;
      if (state >= firstOutput) return true;
    }
    return false;
  }
}

function charClasses(words: readonly string[]): { classOf: Uint16Array; width: number } {
  const classOf = new Uint16Array(65536);
  let width = 1;
  for (const word of words) {
    for (let i = 0; i < word.length; i++) {
      const unit = word.charCodeAt(i);
      if (classOf[unit]) continue;
      classOf[unit] = width;
      const upper = String.fromCharCode(unit).toUpperCase();
      if (upper.length === 1 && !classOf[upper.charCodeAt(0)]) classOf[upper.charCodeAt(0)] = width;
      width++;
    }
  }
  return { classOf, width };
}

interface Trie {
  next: number[][];
  outputs: number[][];
}

function buildTrie(words: readonly string[], classOf: Uint16Array, width: number): Trie {
  const trie: Trie = { next: [new Array(width).fill(-1)], outputs: [[]] };
  words.forEach((word, id) => {
    if (word.length === 0) return;
    let state = 0;
    for (let i = 0; i < word.length; i++) {
      const c = classOf[word.charCodeAt(i)]!;
      let to = trie.next[state]![c]!;
      if (to < 0) {
        to = trie.next.length;
        trie.next.push(new Array(width).fill(-1));
        trie.outputs.push([]);
        trie.next[state]![c] = to;
      }
      state = to;
    }
    trie.outputs[state]!.push(id);
  });
  return trie;
}

/** Breadth-first: each state's missing edges follow its failure link, its outputs include the link's. */
function linkFailures(trie: Trie, width: number): { delta: Int32Array; outputs: number[][] } {
  const n = trie.next.length;
  const delta = new Int32Array(n * width);
  const fail = new Int32Array(n);
  const queue: number[] = [];
  for (let c = 0; c < width; c++) {
    const to = trie.next[0]![c]!;
    delta[c] = Math.max(0, to);
    if (to > 0) queue.push(to);
  }
  for (let head = 0; head < queue.length; head++) {
    const state = queue[head]!;
    trie.outputs[state]!.push(...trie.outputs[fail[state]!]!);
    for (let c = 0; c < width; c++) {
      const to = trie.next[state]![c]!;
      const viaFail = delta[fail[state]! * width + c]!;
      if (to < 0) {
        delta[state * width + c] = viaFail;
      } else {
        delta[state * width + c] = to;
        fail[to] = viaFail;
        queue.push(to);
      }
    }
  }
  return { delta, outputs: trie.outputs };
}

/** Renumbers states so those with output come last (the root, which has none, stays 0). */
function outputsLast(
  delta: Int32Array,
  outputs: number[][],
  width: number,
): { delta: Int32Array; outputs: number[][]; firstOutput: number } {
  const n = outputs.length;
  const order = [...outputs.keys()].sort(
    (a, b) => Number(outputs[a]!.length > 0) - Number(outputs[b]!.length > 0) || a - b,
  );
  const renamed = new Int32Array(n);
  order.forEach((old, now) => {
    renamed[old] = now;
  });
  const moved = new Int32Array(delta.length);
  for (let old = 0; old < n; old++) {
    const now = renamed[old]!;
    for (let c = 0; c < width; c++) moved[now * width + c] = renamed[delta[old * width + c]!]!;
  }
  const firstOutput = order.findIndex((old) => outputs[old]!.length > 0);
  return {
    delta: moved,
    outputs: order.map((old) => outputs[old]!),
    firstOutput: firstOutput < 0 ? n : firstOutput,
  };
}
