/**
 * The text of a lesson as a reader meets it: frontmatter, level-2 sections, the main path
 * apart from the closed-by-default «Для продакшна» blocks (`<Production title="…">…</Production>`),
 * prose words (without code, outputs, tables, figures and markup) and code lines.
 * Pure functions over the MDX source; used by the lesson's content tests and its time estimate.
 */

export interface LessonSource {
  frontmatter: string;
  body: string;
}

/** Split an MDX file into its frontmatter block and body. */
export function splitLesson(text: string, file = 'lesson'): LessonSource {
  const match = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
  if (!match) throw new Error(`${file}: no frontmatter block`);
  return { frontmatter: match[1], body: match[2] };
}

const FENCE = /^\s*(```|~~~)/;

/** Split the body at level-2 headings that are outside fenced code blocks. */
export function sections(body: string): Array<{ heading: string; text: string }> {
  const out: Array<{ heading: string; text: string }> = [];
  let fence = false;
  let current: { heading: string; lines: string[] } | null = null;
  for (const line of body.split('\n')) {
    if (FENCE.test(line)) fence = !fence;
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

/** A piece of MDX split into its main path and its «Для продакшна» blocks (outside code fences). */
export function splitProduction(mdx: string): { main: string; production: string[] } {
  const main: string[] = [];
  const production: string[] = [];
  let block: string[] | null = null;
  let fence = false;
  for (const line of mdx.split('\n')) {
    if (FENCE.test(line)) fence = !fence;
    const trimmed = line.trim();
    if (!fence && block === null && /^<Production\b[^>]*>$/.test(trimmed)) {
      block = [line];
      continue;
    }
    if (!fence && block !== null && trimmed === '</Production>') {
      production.push(block.slice(1).join('\n'));
      block = null;
      continue;
    }
    (block ?? main).push(line);
  }
  if (block !== null) throw new Error(`an unclosed <Production> block: ${block[0].trim()}`);
  return { main: main.join('\n'), production };
}

/** The title of each «Для продакшна» block of a piece of MDX. */
export function productionTitles(mdx: string): string[] {
  return [...mdx.matchAll(/^\s*<Production\s+title="([^"]+)"\s*>\s*$/gm)].map((m) => m[1]);
}

/**
 * The prose of a piece of MDX: without fenced blocks (code, output, diagrams), tables,
 * figures, headings, JSX/ESM lines, comments and inline code; link texts kept.
 */
export function prose(mdx: string): string {
  const kept: string[] = [];
  let fence = false;
  let figure = false;
  for (const line of mdx.replace(/<!--[\s\S]*?-->/g, '').replace(/\{\/\*[\s\S]*?\*\/\}/g, '').split('\n')) {
    const trimmed = line.trim();
    if (FENCE.test(trimmed)) {
      fence = !fence;
      continue;
    }
    if (fence) continue;
    if (/^<figure\b/.test(trimmed)) figure = true;
    if (figure) {
      if (trimmed.includes('</figure>')) figure = false;
      continue;
    }
    if (trimmed.startsWith('|')) continue;
    if (/^#{1,6} /.test(trimmed)) continue;
    if (/^(import|export) /.test(trimmed)) continue;
    if (/^<\/?[A-Za-z][^>]*>$/.test(trimmed) || /^<[A-Za-z][^>]*\/>$/.test(trimmed)) continue;
    kept.push(
      line
        .replace(/<\/?[A-Za-z][^>]*>/g, ' ')
        .replace(/`[^`]*`/g, ' ')
        .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'),
    );
  }
  return kept.join('\n');
}

/** The words of a text: letters and digits, with inner hyphens and apostrophes. */
export function words(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+(?:[-'’][\p{L}\p{N}]+)*/gu) ?? [];
}

/** A fenced block of a piece of MDX. */
export interface Fence {
  lang: string;
  meta: string;
  lines: string[];
}

/** The fenced blocks of a piece of MDX, in order. */
export function fences(mdx: string): Fence[] {
  const out: Fence[] = [];
  let open: Fence | null = null;
  for (const line of mdx.split('\n')) {
    const fence = /^\s*(```|~~~)(\S*)\s*(.*)$/.exec(line);
    if (fence && open === null) {
      open = { lang: fence[2], meta: fence[3], lines: [] };
      continue;
    }
    if (fence && open !== null) {
      out.push(open);
      open = null;
      continue;
    }
    open?.lines.push(line);
  }
  return out;
}

/** The words a reader reads in tables and figure captions (counted for time, not for budgets). */
export function tableAndCaptionWords(mdx: string): number {
  let count = 0;
  let fence = false;
  for (const line of mdx.split('\n')) {
    if (FENCE.test(line)) {
      fence = !fence;
      continue;
    }
    if (fence) continue;
    const trimmed = line.trim();
    if (trimmed.startsWith('|') && !/^\|[\s|:-]+\|$/.test(trimmed)) count += words(trimmed.replace(/`[^`]*`/g, ' x ')).length;
    const caption = /<figcaption>([\s\S]*?)<\/figcaption>/.exec(trimmed);
    if (caption) count += words(caption[1]).length;
    const chartCaption = /<BenchChart\b[^>]*\bcaption="([^"]*)"/.exec(trimmed);
    if (chartCaption) count += words(chartCaption[1]).length;
  }
  return count;
}
