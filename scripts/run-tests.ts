// Runs every suite of tests/suites.json (or only the named ones: `npm test -- site-unit lab`).
// Each suite is a shell command that writes a JUnit XML report to $JUNIT_XML. Prints each
// suite's counts as it finishes and ends with one line `N passed, N failed` summed over suites.
// Exits non-zero when any suite fails, exits non-zero, or writes no report.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countJUnit, summaryLine, type JUnitCounts } from './lib/junit.ts';

interface Suite {
  name: string;
  command: string;
}

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const resultsDir = join(root, '.test-results');

function loadSuites(only: string[]): Suite[] {
  const suites = JSON.parse(readFileSync(join(root, 'tests/suites.json'), 'utf8')) as Suite[];
  if (only.length === 0) return suites;
  const unknown = only.filter((name) => !suites.some((s) => s.name === name));
  if (unknown.length > 0) {
    throw new Error(`unknown suite(s): ${unknown.join(', ')}; known: ${suites.map((s) => s.name).join(', ')}`);
  }
  return suites.filter((s) => only.includes(s.name));
}

function main(): number {
  const suites = loadSuites(process.argv.slice(2));
  mkdirSync(resultsDir, { recursive: true });
  const total: JUnitCounts = { passed: 0, failed: 0, skipped: 0 };
  const failedSuites: string[] = [];
  const lines: string[] = [];
  for (const suite of suites) {
    const report = join(resultsDir, `${suite.name}.xml`);
    rmSync(report, { force: true });
    console.log(`\n=== suite ${suite.name}: ${suite.command}`);
    const started = Date.now();
    const run = spawnSync('bash', ['-c', suite.command], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, JUNIT_XML: report },
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    let status: string;
    if (!existsSync(report)) {
      failedSuites.push(suite.name);
      status = `FAILED: no JUnit report at ${report} (exit ${run.status ?? run.signal})`;
    } else {
      const counts = countJUnit(readFileSync(report, 'utf8'));
      total.passed += counts.passed;
      total.failed += counts.failed;
      total.skipped += counts.skipped;
      status = summaryLine(counts);
      if (run.status !== 0 || counts.failed > 0) {
        failedSuites.push(suite.name);
        status += ` — FAILED (exit ${run.status ?? run.signal})`;
      } else if (counts.passed === 0) {
        failedSuites.push(suite.name);
        status += ' — FAILED: the report has no passing test';
      }
    }
    const line = `suite ${suite.name}: ${status} in ${seconds}s`;
    lines.push(line);
    console.log(`=== ${line}`);
  }
  console.log('\n' + lines.join('\n'));
  if (failedSuites.length > 0) console.log(`failed suites: ${failedSuites.join(', ')}`);
  console.log(summaryLine(total));
  return failedSuites.length > 0 ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 2;
}
