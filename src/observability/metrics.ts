/** Upper bounds (ms) of the stage-latency histogram buckets. */
const BUCKETS_MS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 5000];

interface Histogram {
  count: number;
  sumMs: number;
  buckets: number[];
}

/**
 * In-process counters and stage timings, rendered in the Prometheus text
 * format. Cheap enough for the hot path: a few additions per stage.
 */
export class Metrics {
  private readonly stages = new Map<string, Histogram>();
  private readonly calls = new Map<string, number>();

  observeStage(stage: string, ms: number): void {
    let h = this.stages.get(stage);
    if (!h) {
      h = { count: 0, sumMs: 0, buckets: BUCKETS_MS.map(() => 0) };
      this.stages.set(stage, h);
    }
    h.count++;
    h.sumMs += ms;
    const i = BUCKETS_MS.findIndex((b) => ms <= b);
    if (i >= 0) h.buckets[i]!++;
  }

  countCall(method: string, outcome: string): void {
    const key = `${method}\u0000${outcome}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }

  /** Stage name → { count, total milliseconds }. */
  stageTotals(): Record<string, { count: number; sumMs: number }> {
    return Object.fromEntries([...this.stages].map(([k, h]) => [k, { count: h.count, sumMs: h.sumMs }]));
  }

  render(): string {
    const lines = [
      '# HELP portcullis_stage_duration_seconds Time spent in each pipeline stage.',
      '# TYPE portcullis_stage_duration_seconds histogram',
    ];
    for (const [stage, h] of this.stages) {
      let cumulative = 0;
      BUCKETS_MS.forEach((b, i) => {
        cumulative += h.buckets[i]!;
        lines.push(
          `portcullis_stage_duration_seconds_bucket{stage="${stage}",le="${b / 1000}"} ${cumulative}`,
        );
      });
      lines.push(`portcullis_stage_duration_seconds_bucket{stage="${stage}",le="+Inf"} ${h.count}`);
      lines.push(`portcullis_stage_duration_seconds_sum{stage="${stage}"} ${h.sumMs / 1000}`);
      lines.push(`portcullis_stage_duration_seconds_count{stage="${stage}"} ${h.count}`);
    }
    lines.push(
      '# HELP portcullis_calls_total Calls by method and outcome.',
      '# TYPE portcullis_calls_total counter',
    );
    for (const [key, n] of this.calls) {
      const [method, outcome] = key.split('\u0000');
      lines.push(
        `portcullis_calls_total{method="${escapeLabel(method!)}",outcome="${escapeLabel(outcome!)}"} ${n}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }
}

const escapeLabel = (v: string): string => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
