// The real Astro build fails on a broken lesson, naming the file, the field and the fix. The site
// is copied to a temporary folder so the broken lesson never touches the working tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const lesson = 'src/content/course/05-module-5/07-feature-engineering.mdx';

/** Build a copy of the site whose lesson frontmatter is edited by `edit`; returns exit code and output. */
function buildWith(edit: (frontmatter: string) => string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'site-build-'));
  try {
    for (const entry of ['src', 'astro.config.ts', 'package.json', 'tsconfig.json']) {
      cpSync(join(root, entry), join(dir, entry), { recursive: true });
    }
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    const text = readFileSync(join(dir, lesson), 'utf8');
    const [, frontmatter, body] = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text)!;
    writeFileSync(join(dir, lesson), `---\n${edit(frontmatter)}\n---\n${body}`);
    const run = spawnSync(process.execPath, [join(root, 'node_modules/astro/bin/astro.mjs'), 'build'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CHROMIUM_PATH: '/nonexistent', NO_COLOR: '1' },
    });
    return { status: run.status, output: run.stdout + run.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a wrong order and a mistyped prerequisite fail the build naming file, field and fix', () => {
  const { status, output } = buildWith((fm) =>
    fm.replace(/^order: 7$/m, 'order: 8').replace('module-5/06-etl-elt-patterns', 'module-5/06-etl-elt-pattern'),
  );
  assert.notEqual(status, 0, output);
  assert.match(output, /Invalid lesson src\/content\/course\/05-module-5\/07-feature-engineering\.mdx:/);
  assert.match(output, /order: order is 8 but the file name starts with 07-: set order: 7 or rename the file/);
  assert.match(output, /prerequisites\[0\]: unknown prerequisite "module-5\/06-etl-elt-pattern".*did you mean "module-5\/06-etl-elt-patterns"\?/);
});

test('an unknown difficulty fails the build with the allowed values', () => {
  const { status, output } = buildWith((fm) => fm.replace(/^difficulty: .*$/m, 'difficulty: "hard"'));
  assert.notEqual(status, 0, output);
  assert.match(output, /07-feature-engineering\.mdx:\n\s+- difficulty: difficulty must be one of beginner, intermediate, advanced/);
});
