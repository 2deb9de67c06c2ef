// CLI for snippet sync: `node scripts/snippets.ts check|sync [lesson.mdx ...]`.
// Without lesson paths it works on every src/content/course/**/*.mdx.
import { readFileSync, writeFileSync, existsSync, globSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLessonSnippets, formatProblem, syncLessonSnippets } from './lib/snippets.ts';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

function readSource(path: string): string | undefined {
  const full = resolve(root, path);
  if (!full.startsWith(root + '/') || !existsSync(full)) return undefined;
  return readFileSync(full, 'utf8');
}

function lessonFiles(args: string[]): string[] {
  if (args.length > 0) return args.map((a) => relative(root, resolve(a)));
  return globSync('src/content/course/**/*.mdx', { cwd: root }).sort();
}

function main(): number {
  const [command, ...args] = process.argv.slice(2);
  if (command !== 'check' && command !== 'sync') {
    console.error('usage: node scripts/snippets.ts check|sync [lesson.mdx ...]');
    return 2;
  }
  const lessons = lessonFiles(args);
  let failures = 0;
  let blocksChanged = 0;
  for (const lesson of lessons) {
    const path = join(root, lesson);
    const text = readFileSync(path, 'utf8');
    if (command === 'check') {
      const problems = checkLessonSnippets(lesson, text, readSource);
      for (const p of problems) console.error(formatProblem(p));
      failures += problems.length;
    } else {
      const result = syncLessonSnippets(lesson, text, readSource);
      if (result.changed > 0) writeFileSync(path, result.text);
      blocksChanged += result.changed;
      for (const p of result.problems) console.error(formatProblem(p));
      // Blocks without source/norun are reported too, so a sync leaves nothing unchecked silently.
      const remaining = checkLessonSnippets(lesson, result.text, readSource);
      for (const p of remaining.filter((r) => !result.problems.some((q) => q.line === r.line))) {
        console.error(formatProblem(p));
      }
      failures += remaining.length;
    }
  }
  if (command === 'sync') console.log(`sync:snippets: ${blocksChanged} block(s) rewritten in ${lessons.length} lesson(s)`);
  if (failures > 0) {
    console.error(`${command}:snippets: ${failures} problem(s) in ${lessons.length} lesson(s)`);
    return 1;
  }
  if (command === 'check') console.log(`check:snippets: ${lessons.length} lesson(s) in sync`);
  return 0;
}

process.exitCode = main();
