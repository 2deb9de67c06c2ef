// Delete cached diagram SVGs (src/diagrams/*.svg) that no lesson's ```mermaid block uses any more.
import { globSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { diagramFileName, diagramHash } from '../src/integrations/diagram-cache.ts';
import { findFencedBlocks } from './lib/snippets.ts';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const used = new Set<string>();
for (const lesson of globSync('src/content/course/**/*.mdx', { cwd: root })) {
  for (const block of findFencedBlocks(readFileSync(join(root, lesson), 'utf8'))) {
    if (block.lang === 'mermaid') used.add(diagramFileName(diagramHash(block.code)));
  }
}
let removed = 0;
for (const file of readdirSync(join(root, 'src/diagrams'))) {
  if (file.endsWith('.svg') && !used.has(file)) {
    rmSync(join(root, 'src/diagrams', file));
    console.log(`removed stale src/diagrams/${file}`);
    removed += 1;
  }
}
console.log(`diagrams:prune: ${used.size} diagram(s) in use, ${removed} stale file(s) removed`);
