// Build-time diagrams: the SVG cache is used without a browser, a changed diagram without a
// browser stops with what to install, invalid Mermaid names the file, and the committed cache
// matches the lessons' diagrams exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Element, Root } from 'hast';
import { VFile } from 'vfile';
import { findFencedBlocks } from '../../../scripts/lib/snippets.ts';
import { findChromium } from '../../../src/integrations/chromium.ts';
import { diagramHash } from '../../../src/integrations/diagram-cache.ts';
import { rehypeDiagrams } from '../../../src/integrations/diagrams.ts';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

/** A hast tree like MDX gives: <figure><pre><code class="language-mermaid">…</code></pre><figcaption>…</figcaption></figure>. */
function treeWith(source: string): Root {
  const pre: Element = {
    type: 'element',
    tagName: 'pre',
    properties: {},
    children: [{ type: 'element', tagName: 'code', properties: { className: ['language-mermaid'] }, children: [{ type: 'text', value: source }] }],
    position: { start: { line: 12, column: 1 }, end: { line: 15, column: 4 } },
  };
  const caption: Element = { type: 'element', tagName: 'figcaption', properties: {}, children: [{ type: 'text', value: 'Подпись  к\nсхеме' }] };
  return { type: 'root', children: [{ type: 'element', tagName: 'figure', properties: {}, children: [pre, caption] }] };
}

const lessonFile = () => new VFile({ path: join(root, 'src/content/course/05-module-5/99-example.mdx') });

test('the diagram hash depends on the source only (not surrounding blank lines)', () => {
  assert.equal(diagramHash('flowchart LR\n  A --> B'), diagramHash('\nflowchart LR\n  A --> B\n\n'));
  assert.notEqual(diagramHash('flowchart LR\n  A --> B'), diagramHash('flowchart LR\n  A --> C'));
  assert.match(diagramHash('x'), /^[0-9a-f]{16}$/);
});

test('a cached diagram becomes inline SVG without a browser, named by its caption', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'diagrams-'));
  const source = 'flowchart LR\n  A --> B';
  writeFileSync(join(cacheDir, `${diagramHash(source)}.svg`), '<svg id="mermaid-x" viewBox="0 0 10 10"><g><text>A</text></g></svg>\n');
  const tree = treeWith(source);
  await rehypeDiagrams({ cacheDir, root, executablePath: '/nonexistent/chromium' })(tree, lessonFile());
  const figure = tree.children[0] as Element;
  const frame = figure.children[0] as Element;
  assert.equal(frame.tagName, 'div');
  assert.deepEqual(frame.properties.className, ['diagram-scroll']);
  assert.equal(frame.properties.tabIndex, 0, 'a diagram that scrolls sideways is reachable by keyboard');
  const svg = frame.children[0] as Element;
  assert.equal(svg.tagName, 'svg');
  assert.equal(svg.properties.style, 'min-width:6px', 'never scaled below 60% of its 10px width');
  assert.equal(svg.properties.ariaLabel, 'Подпись к схеме');
  assert.equal(svg.properties.role, 'img');
  assert.equal(svg.properties.dataDiagram, diagramHash(source));
});

test('a changed diagram without a browser stops the build saying what to install', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'diagrams-'));
  await assert.rejects(
    rehypeDiagrams({ cacheDir, root, executablePath: '/nonexistent/chromium' })(treeWith('flowchart LR\n  N --> M'), lessonFile()),
    (error: Error) => {
      assert.match(error.message, /^src\/content\/course\/05-module-5\/99-example\.mdx:12: this Mermaid diagram is new or changed/);
      assert.match(error.message, /apt-get install chromium/);
      assert.match(error.message, /CHROMIUM_PATH/);
      return true;
    },
  );
  assert.deepEqual(readdirSync(cacheDir), []);
});

test('invalid Mermaid fails naming the file and line (renders in Chromium)', async () => {
  const executablePath = findChromium();
  assert.ok(executablePath, 'this test renders with Chromium: apt-get install chromium or set CHROMIUM_PATH');
  const cacheDir = mkdtempSync(join(tmpdir(), 'diagrams-'));
  await assert.rejects(
    rehypeDiagrams({ cacheDir, root, executablePath })(treeWith('flowchart LR\n  A -->> [[[ B'), lessonFile()),
    /^Error: src\/content\/course\/05-module-5\/99-example\.mdx:12: invalid Mermaid diagram: /,
  );
  assert.deepEqual(readdirSync(cacheDir), [], 'nothing is cached for an invalid diagram');
});

test('the committed diagram cache holds exactly the diagrams of the lessons', () => {
  const expected = new Set<string>();
  for (const lesson of globSync('src/content/course/**/*.mdx', { cwd: root })) {
    for (const block of findFencedBlocks(readFileSync(join(root, lesson), 'utf8'))) {
      if (block.lang === 'mermaid') expected.add(`${diagramHash(block.code)}.svg`);
    }
  }
  const cached = new Set(readdirSync(join(root, 'src/diagrams')).filter((f) => f.endsWith('.svg')));
  assert.ok(expected.size > 0);
  assert.deepEqual(
    { missing: [...expected].filter((f) => !cached.has(f)), stale: [...cached].filter((f) => !expected.has(f)) },
    { missing: [], stale: [] },
    'run `npm run build` (renders new diagrams), `npm run diagrams:prune` (removes stale ones) and commit src/diagrams',
  );
});

test('every diagram of a lesson sits in a <figure> with a non-empty <figcaption>', () => {
  const problems: string[] = [];
  for (const lesson of globSync('src/content/course/**/*.mdx', { cwd: root })) {
    const lines = readFileSync(join(root, lesson), 'utf8').split('\n');
    for (const block of findFencedBlocks(lines.join('\n'))) {
      if (block.lang !== 'mermaid') continue;
      const before = lines.slice(0, block.line - 1).filter((l) => l.trim() !== '').pop()?.trim();
      const after = lines.slice(block.contentEnd + 1);
      const close = after.findIndex((l) => l.trim() === '</figure>');
      const caption = /<figcaption>\s*([^<]*\S)\s*<\/figcaption>/.exec(after.slice(0, close === -1 ? 0 : close).join('\n'));
      if (before !== '<figure>' || close === -1 || !caption) {
        problems.push(`${lesson}:${block.line}: wrap the diagram as <figure> … \`\`\`mermaid … \`\`\` <figcaption>Подпись</figcaption> </figure>`);
      }
    }
  }
  assert.deepEqual(problems, []);
});
