/**
 * How long the lesson «Real-time Feature Engineering для ML» takes: its main path read at a
 * stated pace plus the lab, from measured waits and the size of the solution. Pure functions;
 * `scripts/lesson-time.ts` prints the breakdown, `tests/lesson/estimated-time.test.ts` requires
 * the frontmatter's `estimatedTime` to match it.
 *
 * The model (minutes):
 * - prose and table/caption words of the main path at 180 words per minute;
 * - every line of code of the main path at 15 lines per minute (4 s a line), every line of
 *   program output (```text blocks: tables of values, mostly scanned) at 30 lines per minute;
 * - every diagram or chart 0.5, the playground 3 (its task: move T, compare two customers);
 * - «Для продакшна» blocks are closed by default and not counted (reported apart);
 * - the lab: the measured setup (fresh venv without pip's cache) and `check.sh` run
 *   (bench/results/lab_time.md), the check run three times (two failed attempts and the
 *   passing one), and writing the solution's code lines at 3 lines per minute (reading the
 *   starter's hints, adapting the code the lesson showed, reading the checker's message).
 */
import { fences, prose, splitProduction, tableAndCaptionWords, words } from './lesson-text.ts';

export const PACE = {
  wordsPerMinute: 180,
  codeLinesPerMinute: 15,
  outputLinesPerMinute: 30,
  figureMinutes: 0.5,
  playgroundMinutes: 3,
  checkRuns: 3,
  solutionLinesPerMinute: 3,
} as const;

export interface LabMeasure {
  /** Seconds: fresh venv and the lab's packages, without pip's cache. */
  setupSeconds: number;
  /** Seconds: one `scripts/check.sh --solution` run. */
  checkSeconds: number;
}

export interface TimeEstimate {
  proseWords: number;
  tableWords: number;
  codeLines: number;
  outputLines: number;
  figures: number;
  playgrounds: number;
  readingMinutes: number;
  labMinutes: number;
  solutionLines: number;
  totalMinutes: number;
  /** Words and code lines inside «Для продакшна» blocks (not in the total). */
  production: { words: number; codeLines: number; blocks: number };
}

/** The step seconds of bench/results/lab_time.md (`| step | seconds |`). */
export function parseLabTime(markdown: string, file = 'lab_time.md'): LabMeasure {
  const row = (prefix: string): number => {
    const line = markdown.split('\n').find((l) => l.startsWith(`| ${prefix}`));
    const value = line ? Number(line.split('|').at(-2)?.trim()) : NaN;
    if (!Number.isFinite(value)) throw new Error(`${file}: no "| ${prefix}… | seconds |" row`);
    return value;
  };
  return { setupSeconds: row('setup:'), checkSeconds: row('check:') };
}

/** Code lines of a Python file's function bodies: no blank lines, comments or docstrings. */
export function solutionLines(python: string): number {
  let count = 0;
  let inDef = false;
  let docstring = false;
  for (const line of python.split('\n')) {
    const trimmed = line.trim();
    if (/^def /.test(line)) {
      inDef = true;
      continue;
    }
    if (/^\S/.test(line)) inDef = false;
    if (!inDef || trimmed === '' || trimmed.startsWith('#')) continue;
    const quotes = (trimmed.match(/"""/g) ?? []).length;
    if (docstring || quotes > 0) {
      if (quotes === 1) docstring = !docstring;
      continue;
    }
    count += 1;
  }
  return count;
}

/** The estimate for a lesson body (without frontmatter), the lab's measured waits and the
 * solution's source. */
export function estimate(body: string, lab: LabMeasure, solution: string): TimeEstimate {
  const { main, production } = splitProduction(body);
  const proseWords = words(prose(main)).length;
  const tableWords = tableAndCaptionWords(main);
  const mainFences = fences(main);
  const lineCount = (keep: (lang: string) => boolean) =>
    mainFences.filter((f) => keep(f.lang)).reduce((n, f) => n + f.lines.length, 0);
  const codeLines = lineCount((lang) => lang !== 'mermaid' && lang !== 'text');
  const outputLines = lineCount((lang) => lang === 'text');
  const figures = mainFences.filter((f) => f.lang === 'mermaid').length + (main.match(/<BenchChart\b/g) ?? []).length;
  const playgrounds = (main.match(/<Playground\b/g) ?? []).length;
  const readingMinutes =
    (proseWords + tableWords) / PACE.wordsPerMinute +
    codeLines / PACE.codeLinesPerMinute +
    outputLines / PACE.outputLinesPerMinute +
    figures * PACE.figureMinutes +
    playgrounds * PACE.playgroundMinutes;
  const lines = solutionLines(solution);
  const labMinutes =
    (lab.setupSeconds + PACE.checkRuns * lab.checkSeconds) / 60 + lines / PACE.solutionLinesPerMinute;
  const productionText = production.join('\n');
  return {
    proseWords,
    tableWords,
    codeLines,
    outputLines,
    figures,
    playgrounds,
    readingMinutes,
    labMinutes,
    solutionLines: lines,
    totalMinutes: readingMinutes + labMinutes,
    production: {
      words: words(prose(productionText)).length,
      codeLines: fences(productionText).reduce((n, f) => n + f.lines.length, 0),
      blocks: production.length,
    },
  };
}

/** The estimate as the lesson's frontmatter states it: whole minutes, rounded to 5. */
export function roundedMinutes(minutes: number): number {
  return Math.round(minutes / 5) * 5;
}
