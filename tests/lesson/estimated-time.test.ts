// The lesson's `estimatedTime` is measured, not guessed: its main path read at a stated pace
// (scripts/lib/lesson-time.ts) plus the lab's measured waits (bench/results/lab_time.md) and the
// size of the solution a student writes. `npm run lesson:time` prints the breakdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACE, estimate, parseLabTime, roundedMinutes, solutionLines } from '../../scripts/lib/lesson-time.ts';
import { splitLesson } from '../../scripts/lib/lesson-text.ts';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const lessonPath = 'src/content/course/05-module-5/07-feature-engineering.mdx';
const { frontmatter, body } = splitLesson(read(lessonPath), lessonPath);
const stated = Number(/^estimatedTime:\s*(\d+)\s*$/m.exec(frontmatter)?.[1]);
const lab = parseLabTime(read('labs/feature-engineering/bench/results/lab_time.md'));
const result = estimate(body, lab, read('labs/feature-engineering/solution/customer_features.py'));

test('estimatedTime is the measured time of the main path plus the lab, rounded to 5 minutes', (t) => {
  const line =
    `reading ${result.readingMinutes.toFixed(1)} min (${result.proseWords} + ${result.tableWords} words, ` +
    `${result.codeLines} code + ${result.outputLines} output lines, ${result.figures} figures, ${result.playgrounds} playground); ` +
    `lab ${result.labMinutes.toFixed(1)} min (setup ${lab.setupSeconds} s, check ${lab.checkSeconds} s × ${PACE.checkRuns}, ` +
    `${result.solutionLines} solution lines); total ${result.totalMinutes.toFixed(1)} min`;
  t.diagnostic(line);
  console.log(line);
  assert.equal(stated, roundedMinutes(result.totalMinutes), line);
});

test('the estimate counts the main path only: «Для продакшна» blocks are reported apart', () => {
  assert.ok(result.production.blocks >= 5);
  assert.ok(result.production.words > 0 && result.production.codeLines > 0);
  const withOpenBlocks = estimate(body.replace(/^<Production title="[^"]*">$|^<\/Production>$/gm, ''), lab, '');
  assert.ok(withOpenBlocks.readingMinutes > result.readingMinutes + 10, 'the blocks hold real depth');
});

test('the lab measurement and the solution size are read as stated', () => {
  assert.deepEqual(parseLabTime('| step | seconds |\n|---|---|\n| setup: venv | 120.5 |\n| check: run | 40 |'), {
    setupSeconds: 120.5,
    checkSeconds: 40,
  });
  assert.throws(() => parseLabTime('| step | seconds |'), /no "\| setup:… \| seconds \|" row/);
  const python = [
    'import x',
    '',
    'def f(a):',
    '    """Doc',
    '    more."""',
    '    # a comment',
    '    b = a + 1',
    '',
    '    return b',
    '',
    'X = 1',
  ].join('\n');
  assert.equal(solutionLines(python), 2);
});
