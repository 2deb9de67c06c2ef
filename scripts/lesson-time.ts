// CLI: `node scripts/lesson-time.ts` — the lesson's measured time (main path read at a stated
// pace + the lab's measured waits and solution size), per section words on the main path and
// in «Для продакшна» blocks. `npm run lesson:time`.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { estimate, parseLabTime, roundedMinutes } from './lib/lesson-time.ts';
import { prose, sections, splitLesson, splitProduction, words } from './lib/lesson-text.ts';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const LESSON = 'src/content/course/05-module-5/07-feature-engineering.mdx';
export const LAB_TIME = 'labs/feature-engineering/bench/results/lab_time.md';
export const SOLUTION = 'labs/feature-engineering/solution/customer_features.py';

const read = (path: string) => readFileSync(join(root, path), 'utf8');
const { frontmatter, body } = splitLesson(read(LESSON), LESSON);
const result = estimate(body, parseLabTime(read(LAB_TIME), LAB_TIME), read(SOLUTION));
const stated = Number(/^estimatedTime:\s*(\d+)/m.exec(frontmatter)?.[1]);

console.log('words per section (main path / «Для продакшна»):');
for (const s of sections(body)) {
  const { main, production } = splitProduction(s.text);
  const side = words(prose(production.join('\n'))).length;
  console.log(`  ${String(words(prose(main)).length).padStart(5)} / ${String(side).padStart(4)}  ${s.heading}`);
}
const m = (x: number) => x.toFixed(1);
console.log(
  `reading: ${result.proseWords} prose + ${result.tableWords} table/caption words, ` +
    `${result.codeLines} code + ${result.outputLines} output lines, ${result.figures} figures, ${result.playgrounds} playground → ${m(result.readingMinutes)} min`,
);
console.log(`lab: setup + 3 checks (measured, ${LAB_TIME}) + ${result.solutionLines} solution lines → ${m(result.labMinutes)} min`);
console.log(`total ${m(result.totalMinutes)} min → ${roundedMinutes(result.totalMinutes)}; frontmatter estimatedTime: ${stated}`);
console.log(
  `not counted: ${result.production.blocks} «Для продакшна» blocks, ${result.production.words} words, ${result.production.codeLines} code lines`,
);
