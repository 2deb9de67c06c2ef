/**
 * Snippet sync: fenced code blocks in a lesson that declare `source="<path>#<region>"` must show
 * exactly that region of the source file; blocks that are not runnable say so with `norun="<why>"`.
 * Pure functions only: file access is injected by the caller. The fence meta syntax itself
 * (`source=`, `norun=`, `title=`) is parsed by src/integrations/fence-meta.ts, shared with the build.
 */
import { parseFenceMeta, parseSourceRef, type SourceRef } from '../../src/integrations/fence-meta.ts';

/** A fenced code block found in a lesson. */
export interface FencedBlock {
  /** 1-based line of the opening fence. */
  line: number;
  /** Language after the fence (may be empty). */
  lang: string;
  /** Raw meta string after the language. */
  meta: string;
  /** Parsed `key="value"` pairs of the meta. */
  attrs: Record<string, string>;
  /** Indentation of the opening fence (removed from every content line). */
  indent: string;
  /** 0-based index of the first content line in the lesson's lines. */
  contentStart: number;
  /** 0-based index of the closing fence line (exclusive end of the content). */
  contentEnd: number;
  /** Block text without the fence indentation, lines joined by `\n`. */
  code: string;
}

/** A problem found by the snippet check. */
export interface SnippetProblem {
  lesson: string;
  line: number;
  file?: string;
  message: string;
}

/** Reads a repository file by its path from the repository root; `undefined` when it does not exist. */
export type ReadSource = (path: string) => string | undefined;

const FENCE_OPEN = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/;
const MARKER = /^\s*(?:#|--|\/\/)\s*(region|endregion)\b\s*(\S*)\s*$/;

/** Find every fenced code block of a Markdown/MDX text, in order. */
export function findFencedBlocks(text: string): FencedBlock[] {
  const lines = text.split('\n');
  const blocks: FencedBlock[] = [];
  let i = 0;
  while (i < lines.length) {
    const open = FENCE_OPEN.exec(lines[i]);
    if (!open) {
      i += 1;
      continue;
    }
    const [, indent, fence, lang, meta] = open;
    const fenceChar = fence[0];
    const close = new RegExp(`^\\s*${fenceChar === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    let end = i + 1;
    while (end < lines.length && !close.test(lines[end])) end += 1;
    const content = lines.slice(i + 1, end).map((l) => stripIndent(l, indent));
    blocks.push({
      line: i + 1,
      lang,
      meta: meta.trim(),
      attrs: parseFenceMeta(meta),
      indent,
      contentStart: i + 1,
      contentEnd: end,
      code: content.join('\n'),
    });
    i = end + 1;
  }
  return blocks;
}

function stripIndent(line: string, indent: string): string {
  if (indent === '') return line;
  if (line.startsWith(indent)) return line.slice(indent.length);
  return line.trimStart();
}

/** Remove the common leading whitespace of all non-blank lines. */
export function dedent(lines: readonly string[]): string[] {
  let common: number | undefined;
  for (const line of lines) {
    if (line.trim() === '') continue;
    const width = /^[ \t]*/.exec(line)![0].length;
    common = common === undefined ? width : Math.min(common, width);
  }
  return lines.map((line) => (line.trim() === '' ? '' : line.slice(common ?? 0)));
}

function trimTrailingBlank(lines: string[]): string[] {
  let end = lines.length;
  while (end > 0 && lines[end - 1].trim() === '') end -= 1;
  return lines.slice(0, end);
}

/**
 * The text a block shows for a source file: the named region (marker lines excluded, nested
 * markers stripped, dedented, trailing blank lines trimmed) or, without a region, the whole file
 * with all region markers stripped. Throws an Error when the region does not exist or is unclosed.
 */
export function extractRegion(source: string, region?: string): string {
  const lines = source.replace(/\r\n/g, '\n').split('\n');
  if (region === undefined) {
    return trimTrailingBlank(lines.filter((l) => !MARKER.test(l))).join('\n');
  }
  const start = lines.findIndex((l) => {
    const m = MARKER.exec(l);
    return m !== null && m[1] === 'region' && m[2] === region;
  });
  if (start === -1) throw new Error(`region "${region}" not found`);
  let depth = 1;
  const body: string[] = [];
  for (let i = start + 1; i < lines.length; i += 1) {
    const m = MARKER.exec(lines[i]);
    if (m) {
      depth += m[1] === 'region' ? 1 : -1;
      if (depth === 0) return trimTrailingBlank(dedent(body)).join('\n');
      continue;
    }
    body.push(lines[i]);
  }
  throw new Error(`region "${region}" has no "endregion" marker`);
}

/** Resolve what a block with a `source` attribute should contain, or the reason it cannot. */
export function expectedBlockText(
  ref: SourceRef,
  readSource: ReadSource,
): { text: string } | { error: string } {
  const source = readSource(ref.path);
  if (source === undefined) return { error: `source file not found: ${ref.path}` };
  try {
    return { text: extractRegion(source, ref.region) };
  } catch (error) {
    return { error: `${(error as Error).message} in ${ref.path}` };
  }
}

/** Describe the first line where two texts differ. */
export function describeDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  for (let i = 0; i < Math.max(a.length, e.length); i += 1) {
    if (a[i] !== e[i]) {
      const show = (s: string | undefined): string => (s === undefined ? '<no line>' : JSON.stringify(s));
      return `first difference at block line ${i + 1}: lesson has ${show(a[i])}, source has ${show(e[i])}`;
    }
  }
  return 'texts differ';
}

/** Check every fenced block of a lesson; returns the problems (empty when the lesson is in sync). */
export function checkLessonSnippets(lesson: string, text: string, readSource: ReadSource): SnippetProblem[] {
  const problems: SnippetProblem[] = [];
  for (const block of findFencedBlocks(text)) {
    if (block.lang === 'mermaid') continue;
    const { source, norun } = block.attrs;
    if (norun !== undefined && norun.trim() === '') {
      problems.push({ lesson, line: block.line, message: 'norun="" needs a reason, e.g. norun="needs a running Kafka"' });
      continue;
    }
    if (source === undefined) {
      if (norun === undefined) {
        problems.push({
          lesson,
          line: block.line,
          message: 'code block has neither source="<file>#<region>" nor norun="<reason>"',
        });
      }
      continue;
    }
    const ref = parseSourceRef(source);
    if (ref.path === '') {
      problems.push({ lesson, line: block.line, message: `source="${source}" names no file` });
      continue;
    }
    const expected = expectedBlockText(ref, readSource);
    if ('error' in expected) {
      problems.push({ lesson, line: block.line, file: ref.path, message: expected.error });
    } else if (expected.text !== block.code) {
      problems.push({
        lesson,
        line: block.line,
        file: ref.path,
        message: `block differs from ${source} (${describeDifference(block.code, expected.text)}); run npm run sync:snippets`,
      });
    }
  }
  return problems;
}

/** Rewrite every `source=` block of a lesson from its source; blocks whose source is missing stay as they are. */
export function syncLessonSnippets(
  lesson: string,
  text: string,
  readSource: ReadSource,
): { text: string; changed: number; problems: SnippetProblem[] } {
  const lines = text.split('\n');
  const problems: SnippetProblem[] = [];
  let changed = 0;
  // Rewrite from the last block so earlier line indexes stay valid.
  for (const block of findFencedBlocks(text).reverse()) {
    if (block.lang === 'mermaid' || block.attrs.source === undefined) continue;
    const ref = parseSourceRef(block.attrs.source);
    const expected = expectedBlockText(ref, readSource);
    if ('error' in expected) {
      problems.unshift({ lesson, line: block.line, file: ref.path, message: expected.error });
      continue;
    }
    if (expected.text === block.code) continue;
    const replacement = expected.text
      .split('\n')
      .map((l) => (l === '' ? '' : block.indent + l));
    lines.splice(block.contentStart, block.contentEnd - block.contentStart, ...replacement);
    changed += 1;
  }
  return { text: lines.join('\n'), changed, problems };
}

/** One-line human form of a problem: `lesson:line: [file] message`. */
export function formatProblem(problem: SnippetProblem): string {
  const where = `${problem.lesson}:${problem.line}`;
  return problem.file ? `${where}: ${problem.file}: ${problem.message}` : `${where}: ${problem.message}`;
}
