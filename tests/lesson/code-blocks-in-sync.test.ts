// Every lesson of the site is in sync with the source files its code blocks name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, globSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLessonSnippets, formatProblem } from '../../scripts/lib/snippets.ts';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const lessons = globSync('src/content/course/**/*.mdx', { cwd: root }).sort();

test('the site has lessons to check', () => {
  assert.ok(lessons.length > 0, 'no lessons found under src/content/course');
});

for (const lesson of lessons) {
  test(`code blocks of ${lesson} match their sources or say norun`, () => {
    const read = (path: string): string | undefined => {
      const full = resolve(root, path);
      return full.startsWith(root + '/') && existsSync(full) ? readFileSync(full, 'utf8') : undefined;
    };
    const problems = checkLessonSnippets(lesson, readFileSync(join(root, lesson), 'utf8'), read);
    assert.deepEqual(problems.map(formatProblem), []);
  });
}
