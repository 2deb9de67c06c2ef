import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Code, Root } from 'mdast';
import { codeBlockInfo, remarkCodeBlocks } from '../../../src/integrations/code-blocks.ts';

test('the title comes from title= or else the source file name; norun gives the reason', () => {
  assert.deepEqual(codeBlockInfo('source="labs/x/src/features.py#compute" title="Признаки"'), {
    title: 'Признаки',
    norun: undefined,
    source: 'labs/x/src/features.py',
  });
  assert.deepEqual(codeBlockInfo('source="labs/x/config/connector.json"'), {
    title: 'connector.json',
    norun: undefined,
    source: 'labs/x/config/connector.json',
  });
  assert.deepEqual(codeBlockInfo('norun="needs a running Kafka"'), { title: undefined, norun: 'needs a running Kafka', source: undefined });
  assert.deepEqual(codeBlockInfo(null), { title: undefined, norun: undefined, source: undefined });
});

test('code blocks are wrapped with a header, a copy button and the norun note; Mermaid is left alone', () => {
  const python: Code = { type: 'code', lang: 'python', meta: 'source="a/b.py#r"', value: 'x = 1' };
  const bash: Code = { type: 'code', lang: 'bash', meta: 'norun="student terminal"', value: 'ls' };
  const mermaid: Code = { type: 'code', lang: 'mermaid', meta: null, value: 'flowchart LR' };
  const tree: Root = { type: 'root', children: [python, { type: 'blockquote', children: [bash] }, mermaid] };
  remarkCodeBlocks()(tree);
  const rendered = JSON.stringify(tree);
  const first = tree.children[0] as unknown as { name: string; attributes: { name: string; value: string }[]; children: unknown[] };
  assert.equal(first.name, 'div');
  assert.deepEqual(first.attributes.map((a) => [a.name, a.value]), [
    ['class', 'code-block'],
    ['data-source', 'a/b.py'],
  ]);
  assert.equal(first.children[1], python, 'the code node itself stays for highlighting');
  assert.match(rendered, /"value":"b\.py"/);
  assert.match(rendered, /"value":"Копировать"/);
  assert.match(rendered, /"value":"Не запускается: student terminal"/);
  assert.match(rendered, /code-block code-block-norun/);
  assert.equal(tree.children[2], mermaid);
});
