/**
 * The committed cache of rendered diagrams (src/diagrams/<hash>.svg): a diagram's SVG is stored
 * under a hash of its Mermaid source and the render settings, so a build without a browser works
 * while diagrams are unchanged, and `npm run diagrams:prune` can tell which files are stale.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Mermaid settings every diagram is rendered with; part of the cache key. */
export const mermaidConfig = {
  theme: 'default',
  fontFamily: 'ui-sans-serif, system-ui, sans-serif',
  flowchart: { htmlLabels: false },
} as const;

/** Bump when the rendering pipeline changes in a way that changes the SVG. */
const RENDER_VERSION = 'v1';

/** The cache key of a diagram: a short hash of its source and the render settings. */
export function diagramHash(source: string): string {
  return createHash('sha256')
    .update(`${RENDER_VERSION}\n${JSON.stringify(mermaidConfig)}\n${source.trim()}\n`)
    .digest('hex')
    .slice(0, 16);
}

/** The file name of a diagram in the cache folder. */
export function diagramFileName(hash: string): string {
  return `${hash}.svg`;
}

/** The cached SVG of a diagram, or undefined when it has not been rendered yet. */
export function readCachedDiagram(cacheDir: string, hash: string): string | undefined {
  const file = join(cacheDir, diagramFileName(hash));
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** Store a freshly rendered SVG in the cache folder. */
export function writeCachedDiagram(cacheDir: string, hash: string, svg: string): void {
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(join(cacheDir, diagramFileName(hash)), svg + '\n');
}
