/**
 * Build-time Mermaid diagrams (a rehype plugin): every ```mermaid block becomes an inline <svg>.
 * Rendered SVGs come from the committed cache (diagram-cache.ts) while a diagram is unchanged;
 * a new or changed diagram is rendered by rehype-mermaid in Chromium and written to the cache.
 */
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import type { Element, ElementContent, Root, RootContent } from 'hast';
import { fromHtml } from 'hast-util-from-html';
import { toHtml } from 'hast-util-to-html';
import rehypeMermaid from 'rehype-mermaid';
import { unified, type Processor } from 'unified';
import { visit } from 'unist-util-visit';
import type { VFile } from 'vfile';
import { chromiumArgs, findChromium } from './chromium.ts';
import { diagramHash, mermaidConfig, readCachedDiagram, writeCachedDiagram } from './diagram-cache.ts';

export interface DiagramOptions {
  /** Folder of cached SVGs (`<hash>.svg`). */
  cacheDir: string;
  /** Repository root, for file names in messages. */
  root: string;
  /** Chromium executable; default: findChromium(). */
  executablePath?: string;
}

function isMermaidPre(node: Element): boolean {
  if (node.tagName !== 'pre') return false;
  const code = node.children.find((c): c is Element => c.type === 'element' && c.tagName === 'code');
  const classes = code?.properties?.className;
  return Array.isArray(classes) && classes.includes('language-mermaid');
}

function textOf(node: ElementContent | RootContent): string {
  if (node.type === 'text') return node.value;
  if ('children' in node) return (node.children as ElementContent[]).map(textOf).join('');
  return '';
}

/** The text of a sibling <figcaption> (HTML or MDX JSX), which names the diagram for screen readers. */
function captionOf(parent: Element | Root): string | undefined {
  for (const child of parent.children as (RootContent & { name?: string; tagName?: string })[]) {
    if (child.tagName === 'figcaption' || child.name === 'figcaption') {
      const text = textOf(child).replace(/\s+/g, ' ').trim();
      if (text) return text;
    }
  }
  return undefined;
}

/** Diagrams are never scaled below this share of their natural size, so their text stays readable. */
export const MIN_DIAGRAM_SCALE = 0.6;

/**
 * Wrap a diagram in a box that scrolls sideways (and is keyboard-focusable) when the diagram,
 * at its minimum readable scale, is wider than the page column; narrower diagrams just scale down.
 */
export function legibleDiagram(svg: Element): Element {
  const viewBox = String(svg.properties.viewBox ?? '').split(/[\s,]+/).map(Number);
  const width = viewBox.length === 4 && Number.isFinite(viewBox[2]) ? viewBox[2] : undefined;
  if (width !== undefined) {
    const style = String(svg.properties.style ?? '').replace(/;?\s*$/, '');
    svg.properties.style = `${style ? style + ';' : ''}min-width:${Math.round(width * MIN_DIAGRAM_SCALE)}px`;
  }
  return {
    type: 'element',
    tagName: 'div',
    properties: { className: ['diagram-scroll'], tabIndex: 0, role: 'group', ariaLabel: `Схема: ${String(svg.properties.ariaLabel ?? '')}` },
    children: [svg],
  };
}

function svgFromCache(svg: string): Element {
  const fragment = fromHtml(svg, { fragment: true, space: 'svg' });
  const element = fragment.children.find((c): c is Element => c.type === 'element');
  if (!element) throw new Error('cached diagram is not an SVG element');
  return element;
}

/** The rehype plugin: replace mermaid blocks with cached or freshly rendered inline SVG. */
export function rehypeDiagrams(options: DiagramOptions) {
  const renderers = new Map<string, Processor<Root, Root, Root>>();
  return async function transform(tree: Root, file: VFile): Promise<void> {
    const found: { parent: Element | Root; index: number; source: string; line?: number; label: string }[] = [];
    visit(tree, 'element', (node, index, parent) => {
      if (parent && index !== undefined && isMermaidPre(node)) {
        found.push({
          parent: parent as Element | Root,
          index,
          source: textOf(node),
          line: node.position?.start.line,
          label: captionOf(parent as Element | Root) ?? 'Диаграмма',
        });
      }
    });
    if (found.length === 0) return;
    const fileName = file.path ? relative(options.root, file.path) : '<unknown file>';
    for (const diagram of found) {
      const hash = diagramHash(diagram.source);
      let svg = readCachedDiagram(options.cacheDir, hash);
      if (svg === undefined) {
        svg = await renderDiagram(diagram.source, hash, fileName, diagram.line, options, renderers);
        writeCachedDiagram(options.cacheDir, hash, svg);
      }
      const element = svgFromCache(svg);
      element.properties = { ...element.properties, role: 'img', ariaLabel: diagram.label, dataDiagram: hash };
      diagram.parent.children[diagram.index] = legibleDiagram(element);
    }
  };
}

async function renderDiagram(
  source: string,
  hash: string,
  fileName: string,
  line: number | undefined,
  options: DiagramOptions,
  renderers: Map<string, Processor<Root, Root, Root>>,
): Promise<string> {
  const where = line ? `${fileName}:${line}` : fileName;
  const executablePath = options.executablePath ?? findChromium();
  if (!executablePath || !existsSync(executablePath)) {
    throw new Error(
      `${where}: this Mermaid diagram is new or changed (hash ${hash}) and must be rendered, ` +
        `but no Chromium was found${options.executablePath ? ` at ${options.executablePath}` : ''}. ` +
        `Install it (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM_PATH to a Chrome/Chromium binary, then build again. ` +
        `Rendered SVGs are cached in ${relative(options.root, options.cacheDir)}/ — commit them.`,
    );
  }
  let renderer = renderers.get(executablePath);
  if (!renderer) {
    renderer = unified().use(rehypeMermaid, {
      strategy: 'inline-svg',
      prefix: 'mermaid',
      mermaidConfig: { ...mermaidConfig },
      launchOptions: { executablePath, args: chromiumArgs },
    }) as unknown as Processor<Root, Root, Root>;
    renderers.set(executablePath, renderer);
  }
  const tree: Root = {
    type: 'root',
    children: [
      {
        type: 'element',
        tagName: 'pre',
        properties: {},
        children: [
          { type: 'element', tagName: 'code', properties: { className: ['language-mermaid'] }, children: [{ type: 'text', value: source }] },
        ],
      },
    ],
  };
  let result: Root;
  try {
    result = await renderer.run(tree);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${where}: invalid Mermaid diagram: ${reason.split('\n').slice(0, 6).join('\n')}`);
  }
  const svg = result.children.find((c): c is Element => c.type === 'element' && c.tagName === 'svg');
  if (!svg) throw new Error(`${where}: Mermaid rendering produced no <svg>`);
  // Make the ids unique per diagram so several diagrams on one page never collide.
  return toHtml(svg, { space: 'svg' }).replaceAll('mermaid-0', `mermaid-${hash}`);
}
