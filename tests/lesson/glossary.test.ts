// The lesson's glossary (src/content/course/05-module-5/07-feature-engineering.glossary.yaml):
// every term is used in the lesson, no word it forbids occurs in the prose (main path and
// «Для продакшна» blocks), and numbers in prose take a decimal comma.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { prose, splitLesson } from '../../scripts/lib/lesson-text.ts';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const lessonPath = 'src/content/course/05-module-5/07-feature-engineering.mdx';
const glossaryPath = 'src/content/course/05-module-5/07-feature-engineering.glossary.yaml';

interface Term {
  term: string;
  meaning: string;
  avoid?: Array<{ pattern: string; why: string }>;
}
interface Glossary {
  terms: Term[];
  decimal_comma: { versions_after: string[] };
}

const glossary = yaml.load(readFileSync(join(root, glossaryPath), 'utf8')) as Glossary;
const text = prose(splitLesson(readFileSync(join(root, lessonPath), 'utf8'), lessonPath).body);

/** The sentence of `source` around `index` (sentences end with . ! ? before a space or a line end). */
function sentenceAround(source: string, index: number): string {
  const ends = [...source.matchAll(/[.!?](?=\s|$)|\n/g)].map((m) => m.index ?? 0);
  const start = Math.max(-1, ...ends.filter((i) => i < index)) + 1;
  const end = ends.find((i) => i >= index) ?? source.length;
  return source.slice(start, end + 1).trim();
}

/** Where `pattern` (case-insensitive, Unicode) occurs in `source`, as the sentences around it. */
export function occurrences(source: string, pattern: string): string[] {
  return [...source.matchAll(new RegExp(pattern, 'giu'))].map((m) => sentenceAround(source, m.index ?? 0));
}

/** Decimal points in prose numbers that are not versions (`Feast 0.59`, `3.6.1`). */
export function decimalPoints(source: string, versionsAfter: readonly string[]): string[] {
  const bad: string[] = [];
  for (const m of source.matchAll(/(\S+)\s+(\d+\.\d+(?:\.\d+)*)|(\d+\.\d+(?:\.\d+)*)/gu)) {
    const number = m[2] ?? m[3];
    const before = m[1]?.replace(/[«(]/g, '') ?? '';
    if (number.split('.').length > 2) continue; // x.y.z: a version
    if (m[2] !== undefined && versionsAfter.includes(before)) continue;
    bad.push(sentenceAround(source, m.index ?? 0));
  }
  return bad;
}

test('the glossary lists terms with a meaning, each used in the lesson', () => {
  assert.ok(glossary.terms.length >= 15, `${glossary.terms.length} terms`);
  const lower = text.toLowerCase();
  const unused = glossary.terms.filter((t) => !t.meaning || !lower.includes(t.term.toLowerCase()));
  assert.deepEqual(unused.map((t) => t.term), [], 'terms without a meaning or not used in the lesson prose');
});

for (const term of glossary.terms) {
  for (const rule of term.avoid ?? []) {
    test(`«${term.term}»: the prose never says /${rule.pattern}/ (${rule.why})`, () => {
      assert.deepEqual(occurrences(text, rule.pattern), []);
    });
  }
}

test('the forbidden patterns do catch the mixes they name', () => {
  const samples: Record<string, string> = {
    'фич[аиеуо]': 'Новая фича модели.',
    'конвейер\\p{L}*[^.!?]{0,40}(redis|команд)': 'Отправляет конвейером команды Redis.',
    '(redis|команд)\\p{L}*[^.!?]{0,40}конвейер': 'Команды уходят в Redis одним конвейером.',
    'корзин': 'Окно — фиксированная корзина.',
    'склад\\p{L}* данных': 'Файлы или склады данных.',
    '\\bjob\\w*\\b': 'Ночной job читает таблицу.',
    'джоб': 'Ночной джоб читает таблицу.',
    'трейдоф': 'Это трейдофф.',
    'CDC событ': 'Поток CDC событий.',
  };
  let checked = 0;
  for (const term of glossary.terms) {
    for (const rule of term.avoid ?? []) {
      if (!(rule.pattern in samples)) continue;
      checked += 1;
      assert.ok(occurrences(samples[rule.pattern], rule.pattern).length > 0, `/${rule.pattern}/ misses «${samples[rule.pattern]}»`);
    }
  }
  assert.equal(checked, Object.keys(samples).length, 'every sample belongs to a rule of the glossary');
  const pit = glossary.terms.find((t) => t.term === 'point-in-time')!.avoid![0].pattern;
  assert.equal(occurrences('Признаки point-in-time — последнее значение.', pit).length, 1);
  assert.equal(occurrences('Соединение «на момент времени» (point-in-time join) берёт строку.', pit).length, 0);
  assert.equal(occurrences('Point-in-time означает только соединение.', pit).length, 0);
});

test('numbers in prose take a decimal comma; a point only in versions', () => {
  const versions = glossary.decimal_comma.versions_after;
  assert.deepEqual(decimalPoints(text, versions), []);
  assert.equal(decimalPoints('Чтение — p50 0.29 мс.', versions).length, 1);
  assert.equal(decimalPoints('Нужен Feast 0.59 и Debezium 3.6.1.', versions).length, 0);
});
