// The layers of the site: src/ never reaches into scripts/ or tests/, and only the build
// configuration uses the build integrations (pages, layouts and the content model do not).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const IMPORT = /(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

/** Relative imports of the files matching `pattern`, as [importing file, imported file] from the root. */
function relativeImports(pattern: string): [string, string][] {
  const found: [string, string][] = [];
  for (const file of globSync(pattern, { cwd: root })) {
    const text = readFileSync(join(root, file), 'utf8');
    for (const match of text.matchAll(IMPORT)) {
      found.push([file, relative(root, resolve(root, dirname(file), match[1]))]);
    }
  }
  return found;
}

const srcImports = relativeImports('src/**/*.{ts,astro}');

test('the import scan sees the imports of src/', () => {
  assert.ok(srcImports.some(([from, to]) => from === 'src/content.config.ts' && to === 'src/lib/lesson-schema.ts'));
  assert.ok(srcImports.some(([from, to]) => from === 'src/integrations/code-blocks.ts' && to === 'src/integrations/fence-meta.ts'));
});

test('nothing under src/ imports from outside src/ (scripts/, tests/)', () => {
  assert.deepEqual(
    srcImports.filter(([, to]) => !to.startsWith('src/')).map(([from, to]) => `${from} imports ${to}`),
    [],
  );
});

test('pages, layouts, components and the content model do not import the build integrations', () => {
  assert.deepEqual(
    srcImports
      .filter(([from, to]) => !from.startsWith('src/integrations/') && to.startsWith('src/integrations/'))
      .map(([from, to]) => `${from} imports ${to}`),
    [],
  );
  const config = relativeImports('astro.config.ts').map(([, to]) => to);
  assert.deepEqual(config.sort(), ['src/integrations/code-blocks.ts', 'src/integrations/diagrams.ts']);
});
