import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkLessonSnippets,
  extractRegion,
  findFencedBlocks,
  formatProblem,
  syncLessonSnippets,
} from '../../../scripts/lib/snippets.ts';

const pySource = [
  'import os',
  '',
  '# region compute_customer_features',
  'def compute_customer_features(orders_df):',
  '    # region inner',
  '    x = 1',
  '    # endregion',
  '    return orders_df',
  '',
  '',
  '# endregion',
  '',
  'class Sink:',
  '    # region write',
  '    def write(self):',
  '        pass',
  '    # endregion',
].join('\n');

const sqlSource = ['-- region schema', 'CREATE TABLE orders (id INT);', '-- endregion', 'SELECT 1;'].join('\n');
const tsSource = ['const a = 1;', '  // region tsr', '  const b = 2;', '  // endregion'].join('\n');

const files: Record<string, string> = {
  'labs/x/features.py': pySource,
  'labs/x/schema.sql': sqlSource,
  'src/x.ts': tsSource,
  'labs/x/out.txt': 'batch 0\nrow 1\n\n\n',
};
const read = (path: string): string | undefined => files[path];

test('a region excludes its markers, strips nested markers and trims trailing blank lines', () => {
  assert.equal(
    extractRegion(pySource, 'compute_customer_features'),
    'def compute_customer_features(orders_df):\n    x = 1\n    return orders_df',
  );
});

test('a region is dedented', () => {
  assert.equal(extractRegion(pySource, 'write'), 'def write(self):\n    pass');
  assert.equal(extractRegion(tsSource, 'tsr'), 'const b = 2;');
});

test('SQL regions use -- markers', () => {
  assert.equal(extractRegion(sqlSource, 'schema'), 'CREATE TABLE orders (id INT);');
});

test('no region means the whole file without markers', () => {
  assert.equal(extractRegion(sqlSource), 'CREATE TABLE orders (id INT);\nSELECT 1;');
  assert.equal(extractRegion(files['labs/x/out.txt']), 'batch 0\nrow 1');
});

test('a missing or unclosed region throws naming it', () => {
  assert.throws(() => extractRegion(pySource, 'nope'), /region "nope" not found/);
  assert.throws(() => extractRegion('# region a\nx = 1\n', 'a'), /region "a" has no "endregion"/);
});

test('fenced blocks are found with their line, language and code', () => {
  const text = 'intro\n\n```python source="x.py"\nprint(1)\n```\n\n  ~~~sql\n  SELECT 1;\n  ~~~\n';
  const blocks = findFencedBlocks(text);
  assert.equal(blocks.length, 2);
  assert.deepEqual(
    blocks.map((b) => [b.line, b.lang, b.code]),
    [
      [3, 'python', 'print(1)'],
      [7, 'sql', 'SELECT 1;'],
    ],
  );
});

const lesson = [
  '## A', // 1
  '', // 2
  '```python source="labs/x/features.py#compute_customer_features" title="features.py"', // 3
  'def compute_customer_features(orders_df):', // 4
  '    x = 1', // 5
  '    return orders_df', // 6
  '```', // 7
  '', // 8
  '```mermaid', // 9
  'flowchart LR', // 10
  '```', // 11
  '', // 12
  '```bash norun="needs a running Kafka"', // 13
  'kafka-topics --list', // 14
  '```', // 15
  '', // 16
  '```text source="labs/x/out.txt"', // 17
  'batch 0', // 18
  'row 1', // 19
  '```', // 20
].join('\n');

test('a lesson in sync has no problems; mermaid and norun blocks are accepted', () => {
  assert.deepEqual(checkLessonSnippets('l.mdx', lesson, read), []);
});

test('a drifted block is reported with lesson, line, file and the first difference', () => {
  const drifted = lesson.replace('    x = 1', '    x = 2');
  const problems = checkLessonSnippets('l.mdx', drifted, read);
  assert.equal(problems.length, 1);
  assert.equal(problems[0].line, 3);
  assert.equal(problems[0].file, 'labs/x/features.py');
  assert.match(problems[0].message, /block line 2: lesson has "    x = 2", source has "    x = 1"/);
  assert.match(formatProblem(problems[0]), /^l\.mdx:3: labs\/x\/features\.py: block differs/);
});

test('a block without source or norun, an empty norun, a missing file and a missing region are problems', () => {
  const text = [
    '```python',
    'x',
    '```',
    '```bash norun=""',
    'y',
    '```',
    '```sql source="labs/x/missing.sql"',
    'z',
    '```',
    '```sql source="labs/x/schema.sql#nope"',
    'z',
    '```',
  ].join('\n');
  const problems = checkLessonSnippets('l.mdx', text, read);
  assert.deepEqual(
    problems.map((p) => [p.line, p.file]),
    [
      [1, undefined],
      [4, undefined],
      [7, 'labs/x/missing.sql'],
      [10, 'labs/x/schema.sql'],
    ],
  );
  assert.match(problems[0].message, /neither source=.* nor norun=/);
  assert.match(problems[1].message, /needs a reason/);
  assert.match(problems[2].message, /source file not found: labs\/x\/missing\.sql/);
  assert.match(problems[3].message, /region "nope" not found in labs\/x\/schema\.sql/);
});

test('sync rewrites drifted blocks from their sources and leaves the rest alone', () => {
  const drifted = lesson
    .replace('    x = 1\n    return orders_df', '    old()')
    .replace('batch 0\nrow 1', 'stale output');
  const result = syncLessonSnippets('l.mdx', drifted, read);
  assert.equal(result.changed, 2);
  assert.deepEqual(result.problems, []);
  assert.equal(result.text, lesson);
  assert.deepEqual(checkLessonSnippets('l.mdx', result.text, read), []);
});

test('sync keeps the indentation of an indented fence', () => {
  const text = '1. Step\n\n   ```sql source="labs/x/schema.sql#schema"\n   SELECT 0;\n   ```\n';
  const result = syncLessonSnippets('l.mdx', text, read);
  assert.equal(result.text, '1. Step\n\n   ```sql source="labs/x/schema.sql#schema"\n   CREATE TABLE orders (id INT);\n   ```\n');
  assert.deepEqual(checkLessonSnippets('l.mdx', result.text, read), []);
});
