import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import {
  verifyConsistency,
  verifyInclusion,
  verifySubtreeConsistency,
  verifySubtreeInclusion,
} from '../../src/audit/merkle.ts';
import { corpus } from '../helpers.ts';

const CORPUS = corpus('merkle');

interface Vector {
  leafIdx?: number;
  treeSize?: number;
  start?: number;
  end?: number;
  size?: number;
  size1?: number;
  size2?: number;
  root?: string;
  root1?: string;
  root2?: string;
  leafHash?: string;
  proof: string[] | null;
  wantErr: boolean;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.json') ? [path] : [];
  });
}

const b = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64');

function verdict(kind: string, v: Vector): boolean {
  const proof = (v.proof ?? []).map(b);
  switch (kind) {
    case 'inclusion':
      return verifyInclusion(v.leafIdx!, v.treeSize!, b(v.leafHash), proof, b(v.root));
    case 'consistency':
      return verifyConsistency(v.size1!, v.size2!, proof, b(v.root1), b(v.root2));
    case 'subtreeinclusion':
      return verifySubtreeInclusion(v.leafIdx!, v.start!, v.end!, b(v.leafHash), proof, b(v.root));
    case 'subtreeconsistency':
      return verifySubtreeConsistency(v.start!, v.end!, v.size!, proof, b(v.root1), b(v.root2));
    default:
      throw new Error(`unknown corpus kind ${kind}`);
  }
}

describe('the Merkle corpus', () => {
  for (const kind of ['inclusion', 'consistency', 'subtreeinclusion', 'subtreeconsistency']) {
    it(`gives the expected verdict for every ${kind} vector`, () => {
      const paths = files(join(CORPUS, kind));
      assert.ok(paths.length > 50, `expected a full ${kind} corpus`);
      const wrong = paths.filter((path) => {
        const v = JSON.parse(readFileSync(path, 'utf8')) as Vector;
        return verdict(kind, v) === v.wantErr;
      });
      assert.deepEqual(
        wrong.map((p) => relative(CORPUS, p)),
        [],
      );
    });
  }
});
