import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileDetectors } from '../../src/protect/compile.ts';
import { corpus } from '../helpers.ts';
import { EXCLUDED, loadCorpus, scoreCorpus } from './secretlint-corpus.ts';

const detectors = compileDetectors({ secrets: true, pii: [], custom: [] });
const cases = loadCorpus(corpus('secretlint'));
const score = scoreCorpus(cases, (text) => detectors.scanText(text));

describe('the secret detectors on the secretlint corpus (cases written by others)', () => {
  it('reads the corpus: positive and negative cases from most rule folders', () => {
    assert.ok(score.expected >= 100, `expected secrets: ${score.expected}`);
    assert.ok(score.negatives >= 30, `negative cases: ${score.negatives}`);
    assert.ok(cases.every((c) => !(c.name.split('/')[0]! in EXCLUDED)));
  });

  it('finds at least 95 % of the secrets the ng cases hold', () => {
    assert.ok(score.recall >= 0.95, `recall ${score.recall.toFixed(3)}; missed:\n${score.missed.join('\n')}`);
  });

  it('flags at most 2 % of the ok cases', () => {
    assert.ok(
      score.falsePositiveRate <= 0.02,
      `false positives ${score.falsePositiveRate.toFixed(3)}:\n${score.falsePositives.join('\n')}`,
    );
  });
});
