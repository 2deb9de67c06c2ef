import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFenceMeta, parseSourceRef } from '../../../src/integrations/fence-meta.ts';

test('fence meta and source references parse', () => {
  assert.deepEqual(parseFenceMeta('source="a/b.py#r" title="Файл b.py" norun=\'needs Kafka\''), {
    source: 'a/b.py#r',
    title: 'Файл b.py',
    norun: 'needs Kafka',
  });
  assert.deepEqual(parseSourceRef('a/b.py#r'), { path: 'a/b.py', region: 'r' });
  assert.deepEqual(parseSourceRef('a/b.py'), { path: 'a/b.py' });
});

test('a source without a region, with an empty region, or with spaces', () => {
  assert.deepEqual(parseSourceRef(' a/b.sql # schema '), { path: 'a/b.sql', region: 'schema' });
  assert.deepEqual(parseSourceRef('a/b.sql#'), { path: 'a/b.sql', region: undefined });
  assert.deepEqual(parseSourceRef('#r'), { path: '', region: 'r' });
});

test('meta without key="value" pairs, or with other words, gives only the pairs', () => {
  assert.deepEqual(parseFenceMeta(''), {});
  assert.deepEqual(parseFenceMeta('{1,3} showLineNumbers title="x.py" broken=unquoted'), { title: 'x.py' });
  assert.deepEqual(parseFenceMeta('norun=""'), { norun: '' });
});
