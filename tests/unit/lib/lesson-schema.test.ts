// The lesson schema's messages on broken fixtures: each names the field and the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, globSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { checkLesson, formatLessonProblems } from '../../../src/lib/lesson-schema.ts';
import type { Outline } from '../../../src/lib/outline.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const outline = JSON.parse(readFileSync(join(here, '../../../src/data/outline.json'), 'utf8')) as Outline;

/** Problems of the single lesson of a fixture scenario, as `field: message` lines. */
function problemsOf(scenario: string): string[] {
  const base = join(here, 'fixtures/lessons', scenario);
  const [entry] = globSync('**/*.mdx', { cwd: base });
  const text = readFileSync(join(base, entry), 'utf8');
  const frontmatter = yaml.load(/^---\n([\s\S]*?)\n---/.exec(text)![1]);
  return checkLesson(entry, frontmatter, outline).map((p) => `${p.field}: ${p.message}`);
}

test('a valid lesson has no problems', () => {
  assert.deepEqual(problemsOf('valid'), []);
});

test('order must equal the file name prefix', () => {
  assert.deepEqual(problemsOf('order-mismatch'), [
    'order: order is 6 but the file name starts with 07-: set order: 7 or rename the file',
  ]);
});

test('a mistyped prerequisite fails with the closest known id', () => {
  assert.deepEqual(problemsOf('prerequisite-typo'), [
    'prerequisites[0]: unknown prerequisite "module-5/06-etl-elt-pattern": it is not in the course outline (src/data/outline.json); did you mean "module-5/06-etl-elt-patterns"?',
  ]);
});

test('broken values name each field and an example of the fix', () => {
  assert.deepEqual(problemsOf('bad-values'), [
    'description: description must not be empty, e.g. description: "Вычисление ML-признаков из CDC событий в реальном времени"',
    'difficulty: difficulty must be one of beginner, intermediate, advanced, e.g. difficulty: "advanced"',
    'estimatedTime: estimatedTime must be positive, e.g. estimatedTime: 50 (minutes)',
    'topics: topics must list at least one topic, e.g. topics: ["PySpark"]',
    'prerequisites[0]: each prerequisite must be a lesson id module-N/NN-slug, e.g. "module-5/06-etl-elt-patterns"',
  ]);
});

test('a missing field and an unknown field are named', () => {
  assert.deepEqual(problemsOf('missing-and-unknown'), [
    'estimatedTime: estimatedTime is required: estimatedTime must be a number, e.g. estimatedTime: 50 (minutes)',
    ': unknown field(s) level: remove them or fix the spelling',
  ]);
});

test('a file name without the NN- prefix is rejected', () => {
  assert.deepEqual(problemsOf('bad-file-name'), [
    ': a lesson file must be named NN-module-N/NN-slug.mdx (e.g. 05-module-5/07-feature-engineering.mdx)',
  ]);
});

test('the build message names the file and every problem', () => {
  const message = formatLessonProblems('src/content/course/05-module-5/07-x.mdx', [
    { field: 'order', message: 'order is 6 but …' },
    { field: '', message: 'whole-file problem' },
  ]);
  assert.equal(message, 'Invalid lesson src/content/course/05-module-5/07-x.mdx:\n  - order: order is 6 but …\n  - whole-file problem');
});
