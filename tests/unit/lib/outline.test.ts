import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  checkOutline,
  compareLessonIds,
  courseLessons,
  lessonIdFromEntry,
  previousNext,
  resolvePrerequisite,
  type Outline,
} from '../../../src/lib/outline.ts';
import { difficultyLabel, formatLessons, formatMinutes } from '../../../src/lib/format.ts';

const outline = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../src/data/outline.json', import.meta.url)), 'utf8'),
) as Outline;
const pages = new Set(['module-5/07-feature-engineering']);

test('the course outline is well formed and lists module 5 in order', () => {
  assert.deepEqual(checkOutline(outline), []);
  assert.deepEqual(
    outline.modules.find((m) => m.number === 5)!.lessons.map((l) => l.id.split('/')[1].slice(0, 2)),
    ['01', '02', '03', '04', '05', '06', '07'],
  );
});

test('the outline flags malformed, misfiled and duplicate lessons', () => {
  const broken: Outline = {
    title: 't',
    modules: [
      {
        id: 'module-4',
        number: 4,
        title: 'M',
        lessons: [
          { id: 'module-4/01-a', title: 'a', estimatedTime: 1, difficulty: 'beginner' },
          { id: 'module-5/02-b', title: 'b', estimatedTime: 1, difficulty: 'beginner' },
          { id: 'module-4/01-a', title: 'a', estimatedTime: 1, difficulty: 'beginner' },
          { id: 'module-4/x', title: 'x', estimatedTime: 1, difficulty: 'beginner' },
        ],
      },
    ],
  };
  assert.deepEqual(checkOutline(broken), [
    'lesson module-5/02-b is listed under module-4',
    'lesson module-4/01-a is listed twice',
    'lesson id module-4/x is not module-N/NN-slug',
  ]);
});

test('lesson ids come from file paths', () => {
  assert.equal(lessonIdFromEntry('05-module-5/07-feature-engineering.mdx'), 'module-5/07-feature-engineering');
  assert.throws(() => lessonIdFromEntry('05-module-5/feature.mdx'), /NN-module-N\/NN-slug\.mdx/);
  assert.throws(() => lessonIdFromEntry('04-module-5/07-x.mdx'), /folder number 04 does not match module-5/);
});

test('course order is module first, then order within the module', () => {
  const ids = ['module-5/07-b', 'module-10/01-a', 'module-5/06-a', 'module-4/09-z'];
  assert.deepEqual([...ids].sort(compareLessonIds), ['module-4/09-z', 'module-5/06-a', 'module-5/07-b', 'module-10/01-a']);
});

test('a prerequisite that is a page becomes a link; a full-course one is shown by title', () => {
  assert.deepEqual(resolvePrerequisite(outline, 'module-5/06-etl-elt-patterns', pages), {
    kind: 'course',
    id: 'module-5/06-etl-elt-patterns',
    title: 'ETL/ELT паттерны с CDC данными',
    moduleTitle: 'Модуль 5. Data Engineering',
  });
  assert.deepEqual(resolvePrerequisite(outline, 'module-5/07-feature-engineering', pages), {
    kind: 'page',
    id: 'module-5/07-feature-engineering',
    title: 'Real-time Feature Engineering для ML',
    href: '/course/module-5/07-feature-engineering/',
  });
});

test('an unknown prerequisite fails, suggesting the closest id only when close', () => {
  assert.throws(
    () => resolvePrerequisite(outline, 'module-5/05-pyspark-structured-stream', pages),
    /did you mean "module-5\/05-pyspark-structured-streaming"\?/,
  );
  assert.throws(() => resolvePrerequisite(outline, 'module-9/01-quantum', pages), /add the lesson to the outline or fix the id/);
});

test('previous and next follow course order and link only pages of this site', () => {
  const { previous, next } = previousNext(outline, 'module-5/07-feature-engineering', pages);
  assert.equal(previous?.id, 'module-5/06-etl-elt-patterns');
  assert.equal(previous?.href, undefined);
  assert.equal(next, undefined);
  const around = previousNext(outline, 'module-5/06-etl-elt-patterns', pages);
  assert.equal(around.previous?.id, 'module-5/05-pyspark-structured-streaming');
  assert.equal(around.next?.href, '/course/module-5/07-feature-engineering/');
  assert.equal(courseLessons(outline, pages).filter((l) => l.href).length, 1);
});

test('Russian plurals for minutes and lessons', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 11, 12, 14, 21, 22, 25, 50, 101, 111].map(formatMinutes),
    ['1 минута', '2 минуты', '3 минуты', '4 минуты', '5 минут', '11 минут', '12 минут', '14 минут', '21 минута', '22 минуты', '25 минут', '50 минут', '101 минута', '111 минут'],
  );
  assert.deepEqual([1, 2, 7].map(formatLessons), ['1 урок', '2 урока', '7 уроков']);
});

test('difficulty levels in Russian', () => {
  assert.deepEqual(
    (['beginner', 'intermediate', 'advanced'] as const).map(difficultyLabel),
    ['Начальный', 'Средний', 'Продвинутый'],
  );
});
