// Content checks of the lesson «Real-time Feature Engineering для ML» against its plan:
// frontmatter values, the nine sections in order, prose word budgets, Russian prose,
// diagrams, length and the key code names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

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
  const text = readFileSync(lessonPath, 'utf8');
  const match = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
  if (!match) throw new Error(`${lessonPath}: no frontmatter block`);
  return { frontmatter: parseFrontmatter(match[1]), body: match[2] };
}

/** Split the body at level-2 headings that are outside fenced code blocks. */
function sections(body: string): Array<{ heading: string; text: string }> {
  const out: Array<{ heading: string; text: string }> = [];
  let fence = false;
  let current: { heading: string; lines: string[] } | null = null;
  for (const line of body.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const heading = !fence && /^## (.+)$/.exec(line);
    if (heading) {
      if (current) out.push({ heading: current.heading, text: current.lines.join('\n') });
      current = { heading: heading[1].trim(), lines: [] };
    } else if (current) {
      current.lines.push(line);
    }
  }
  if (current) out.push({ heading: current.heading, text: current.lines.join('\n') });
  return out;
}

/**
 * The prose of a piece of MDX: without fenced blocks (code, output, diagrams), tables,
 * headings, JSX/ESM lines, comments and inline code; link texts kept.
 */
export function prose(mdx: string): string {
  const kept: string[] = [];
  let fence = false;
  for (const line of mdx.replace(/<!--[\s\S]*?-->/g, '').replace(/\{\/\*[\s\S]*?\*\/\}/g, '').split('\n')) {
    const trimmed = line.trim();
    if (/^(```|~~~)/.test(trimmed)) {
      fence = !fence;
      continue;
    }
    if (fence) continue;
    if (trimmed.startsWith('|')) continue;
    if (/^#{1,6} /.test(trimmed)) continue;
    if (/^(import|export) /.test(trimmed)) continue;
    if (/^<\/?[A-Za-z][^>]*>$/.test(trimmed)) continue;
    kept.push(
      line
        .replace(/<\/?[A-Za-z][^>]*>/g, ' ')
        .replace(/`[^`]*`/g, ' ')
        .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'),
    );
  }
  return kept.join('\n');
}

export function words(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+(?:[-'’][\p{L}\p{N}]+)*/gu) ?? [];
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

test('prose words per section reach the plan budget', (t) => {
  const report: string[] = [];
  const short: string[] = [];
  let total = 0;
  for (const [heading, budget] of expectedSections) {
    const section = lessonSections.find((s) => s.heading === heading);
    assert.ok(section, `missing section «${heading}»`);
    const count = words(prose(section.text)).length;
    total += count;
    report.push(`${String(count).padStart(5)} words (budget ${budget}) — ${heading}`);
    if (count < budget) short.push(`«${heading}»: ${count} < ${budget}`);
  }
  report.push(`${String(total).padStart(5)} words in total`);
  for (const line of report) t.diagnostic(line);
  console.log(report.join('\n'));
  assert.deepEqual(short, [], 'sections below their word budget');
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
