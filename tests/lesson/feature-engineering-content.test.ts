// Content checks of the lesson «Real-time Feature Engineering для ML» against its plan:
// frontmatter values, the nine sections in order, main-path prose word budgets (the
// «Для продакшна» blocks apart), Russian prose,
// diagrams, length and the key code names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { productionTitles, prose, sections, splitLesson, splitProduction, words } from '../../scripts/lib/lesson-text.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const lessonPath = join(root, 'src/content/course/05-module-5/07-feature-engineering.mdx');

/** The plan's frontmatter values, exactly. */
const expectedFrontmatter = {
  title: 'Real-time Feature Engineering для ML',
  description: 'Вычисление ML-признаков из CDC событий в реальном времени',
  order: 7,
  difficulty: 'advanced',
  estimatedTime: 50,
  topics: ['Feature Engineering', 'Machine Learning', 'Real-Time', 'Feature Store', 'PySpark'],
  prerequisites: ['module-5/06-etl-elt-patterns'],
};

/** The plan's sections in order, with their prose word budgets (0 = no budget). */
const expectedSections: ReadonlyArray<readonly [string, number]> = [
  ['Зачем real-time features из CDC?', 200],
  ['Типы признаков из CDC событий', 150],
  ['Паттерн: Customer Behavior Features', 250],
  ['Паттерн: Product Metrics Features', 150],
  ['Запись в Feature Store', 200],
  ['Feature Store интеграция: Feast', 150],
  ['Feature Freshness vs Latency трейдофф', 100],
  ['Мониторинг feature pipeline', 100],
  ['Лабораторная работа: Customer Features Pipeline', 100],
  ['Что дальше?', 0],
  ['Ключевые выводы', 0],
];

interface Lesson {
  frontmatter: Record<string, unknown>;
  body: string;
}

/** Parse a YAML scalar of the subset frontmatter uses: quoted strings, numbers, plain strings. */
function parseScalar(raw: string): unknown {
  const value = raw.trim();
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value.startsWith('"') && value.endsWith('"')) return JSON.parse(value);
  if (value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1).replace(/''/g, "'");
  return value;
}

/** Parse frontmatter of the subset the course uses: scalars, flow lists and block lists. */
function parseFrontmatter(yaml: string): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  let listKey: string | null = null;
  for (const line of yaml.split('\n')) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const item = /^\s+-\s+(.*)$/.exec(line);
    if (item && listKey) {
      (result[listKey] as unknown[]).push(parseScalar(item[1]));
      continue;
    }
    const pair = /^([A-Za-z_][\w-]*):\s*(.*)$/.exec(line);
    if (!pair) throw new Error(`${lessonPath}: cannot read frontmatter line: ${line}`);
    const [, key, rest] = pair;
    if (rest === '') {
      result[key] = [];
      listKey = key;
    } else if (rest.startsWith('[')) {
      result[key] = JSON.parse(rest.replace(/'/g, '"'));
      listKey = null;
    } else {
      result[key] = parseScalar(rest);
      listKey = null;
    }
  }
  return result;
}

function readLesson(): Lesson {
  const { frontmatter, body } = splitLesson(readFileSync(lessonPath, 'utf8'), lessonPath);
  return { frontmatter: parseFrontmatter(frontmatter), body };
}

const lesson = readLesson();
const lessonSections = sections(lesson.body);

test('frontmatter equals the plan', () => {
  for (const [key, value] of Object.entries(expectedFrontmatter)) {
    assert.deepEqual(lesson.frontmatter[key], value, `frontmatter field "${key}"`);
  }
});

test('the plan sections are the level-2 headings, in order', () => {
  assert.deepEqual(
    lessonSections.map((s) => s.heading),
    expectedSections.map(([heading]) => heading),
  );
});

/** The plan's budgets are approximate («~200 words»): the main path of each section stays within. */
const BUDGET_LOW = 0.8;
const BUDGET_HIGH = 1.2;

test('main-path prose words per section are within 0.8–1.2× the plan budget; «Для продакшна» counted apart', (t) => {
  const report: string[] = [];
  const outside: string[] = [];
  let total = 0;
  let totalProduction = 0;
  for (const [heading, budget] of expectedSections) {
    const section = lessonSections.find((s) => s.heading === heading);
    assert.ok(section, `missing section «${heading}»`);
    const { main, production } = splitProduction(section.text);
    const count = words(prose(main)).length;
    const side = words(prose(production.join('\n'))).length;
    total += count;
    totalProduction += side;
    report.push(`${String(count).padStart(5)} words (budget ${budget}), «Для продакшна» ${String(side).padStart(4)} — ${heading}`);
    if (budget > 0 && (count < BUDGET_LOW * budget || count > BUDGET_HIGH * budget)) {
      outside.push(`«${heading}»: ${count} words, budget ${budget} (allowed ${Math.ceil(BUDGET_LOW * budget)}–${Math.floor(BUDGET_HIGH * budget)})`);
    }
  }
  report.push(`${String(total).padStart(5)} words on the main path, ${totalProduction} in «Для продакшна» blocks`);
  for (const line of report) t.diagnostic(line);
  console.log(report.join('\n'));
  assert.deepEqual(outside, [], 'sections outside their word budget');
});

test('the word counter skips code, outputs, tables, figures, markup and «Для продакшна» blocks', () => {
  const mdx = [
    'Один два `code` три.',
    '',
    '```python',
    'not counted',
    '```',
    '| таблица | не считается |',
    '<figure>',
    'подпись не считается',
    '</figure>',
    '<Production title="глубже">',
    '',
    'пять шесть',
    '',
    '</Production>',
    '<BenchChart kind="sink" caption="не считается" />',
    'Четыре.',
  ].join('\n');
  const { main, production } = splitProduction(mdx);
  assert.deepEqual(words(prose(main)), ['Один', 'два', 'три', 'Четыре']);
  assert.deepEqual(words(prose(production.join('\n'))), ['пять', 'шесть']);
  assert.deepEqual(productionTitles(mdx), ['глубже']);
});

test('«Для продакшна» blocks have a title, hold no heading and no diagram (they are closed by default)', () => {
  const { production } = splitProduction(lesson.body);
  assert.ok(production.length >= 5, `found ${production.length} «Для продакшна» blocks`);
  assert.equal(productionTitles(lesson.body).length, production.length, 'every block has title="…"');
  for (const block of production) {
    const outsideCode = block.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
    assert.doesNotMatch(outsideCode, /^#{1,6} /m, 'a heading inside a closed block would be a dead table-of-contents link');
    assert.doesNotMatch(block, /^```mermaid/m, 'a diagram inside a closed block has no size to check');
  }
});

test('Russian letters are the clear majority of the prose, and no paragraph is English-only', () => {
  const text = prose(lesson.body);
  const cyrillic = (text.match(/[А-Яа-яЁё]/g) ?? []).length;
  const latin = (text.match(/[A-Za-z]/g) ?? []).length;
  const share = cyrillic / (cyrillic + latin);
  assert.ok(share >= 0.75, `Cyrillic share of prose letters is ${share.toFixed(2)}, expected ≥ 0.75`);
  const englishOnly = text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => words(p).length >= 4 && !/[А-Яа-яЁё]/.test(p));
  assert.deepEqual(englishOnly, [], 'prose paragraphs without Russian text');
});

test('at least three Mermaid diagrams', () => {
  const diagrams = lesson.body.match(/^```mermaid\s*$/gm) ?? [];
  assert.ok(diagrams.length >= 3, `found ${diagrams.length} mermaid blocks`);
});

test('the lesson has at least 200 lines', () => {
  const lines = readFileSync(lessonPath, 'utf8').split('\n').length;
  assert.ok(lines >= 200, `${lines} lines`);
});

test('the key code names and the foreachBatch sink appear', () => {
  const text = readFileSync(lessonPath, 'utf8');
  assert.ok(text.includes('compute_customer_features'), 'compute_customer_features');
  assert.ok(text.includes('write_to_feature_store'), 'write_to_feature_store');
  assert.match(text, /foreachBatch\(.*write_to_feature/);
  assert.match(text, /foreachBatch.*write_to_feature/);
});

test('every fenced block except diagrams is synced from a source or marked not runnable', () => {
  const unmarked: string[] = [];
  let fence = false;
  lesson.body.split('\n').forEach((line, index) => {
    const open = /^\s*```(\S*)(.*)$/.exec(line);
    if (!open) return;
    if (fence) {
      fence = false;
      return;
    }
    fence = true;
    const [, lang, meta] = open;
    if (lang === 'mermaid') return;
    if (!/\bsource="[^"]+"/.test(meta) && !/\bnorun="[^"]+"/.test(meta)) {
      unmarked.push(`body line ${index + 1}: \`\`\`${lang}${meta}`);
    }
  });
  assert.deepEqual(unmarked, []);
});

test('every block synced from an output file shows that file', () => {
  const blocks = lesson.body.matchAll(/^```text[^\n]*source="([^"#]+)"[^\n]*\n([\s\S]*?)^```\s*$/gm);
  let count = 0;
  for (const [, path, content] of blocks) {
    count += 1;
    const expected = readFileSync(join(root, path), 'utf8');
    assert.equal(content.trimEnd(), expected.trimEnd(), `${path} differs from its block in the lesson`);
  }
  assert.ok(count >= 4, `expected the pitfall outputs to be shown, found ${count} output blocks`);
});

test('the plan verify list: feature types, feature store options and the exercise features', () => {
  const text = readFileSync(lessonPath, 'utf8');
  const required = [
    'point-in-time', 'aggregated', 'behavioral', 'derived',
    'Redis', 'DynamoDB', 'Feast', 'Tecton',
    'order_count_30d', 'total_spend_30d', 'avg_order_value', 'days_since_last_order',
    'units_sold_7d', 'revenue_7d', 'unique_customers_7d', 'withWatermark',
    'PushMode', 'write_to_online_store', 'SparkKafkaProcessor', 'REPLICA IDENTITY FULL',
    'npm run lab:check', 'labs/feature-engineering/starter/customer_features.py',
  ];
  const missing = required.filter((term) => !text.includes(term));
  assert.deepEqual(missing, [], 'terms the plan requires the lesson to cover');
});
