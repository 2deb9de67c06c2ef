// The lesson's model table quotes bench/results/ml.md: every number of the results file's
// "Offline vs served" rows appears, with a decimal comma, in the lesson's row of the same set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const lesson = readFileSync(join(root, 'src/content/course/05-module-5/07-feature-engineering.mdx'), 'utf8');
const results = readFileSync(join(root, 'labs/feature-engineering/bench/results/ml.md'), 'utf8');

const row = (text: string, first: string): string[] => {
  const line = text.split('\n').find((l) => l.startsWith(`| ${first} |`));
  assert.ok(line, `no row "${first}"`);
  return line.split('|').slice(1, -1).map((c) => c.trim());
};

test('the lesson quotes the ML loop results: offline and served AUC and log loss per training set', () => {
  const pairs: [string, string][] = [
    ['point-in-time', 'point-in-time'],
    ["naive: today's values", 'наивная: сегодняшние значения'],
  ];
  for (const [source, quoted] of pairs) {
    // results: set | train rows | test rows | offline AUC | served AUC | offline log loss | served log loss
    const [, , , ...metrics] = row(results, source);
    assert.equal(metrics.length, 4);
    assert.deepEqual(row(lesson, quoted).slice(1), metrics.map((m) => m.replace('.', ',')), quoted);
  }
});
