/** Counts of one JUnit XML report. */
export interface JUnitCounts {
  passed: number;
  failed: number;
  skipped: number;
}

const TESTCASE = /<testcase\b(?:[^>"']|"[^"]*"|'[^']*')*?(?:\/>|>([\s\S]*?)<\/testcase>)/g;

/**
 * Count passed, failed (failure or error) and skipped test cases of a JUnit XML report
 * (the format written by `node --test --test-reporter=junit` and by `pytest --junitxml`).
 */
export function countJUnit(xml: string): JUnitCounts {
  const counts: JUnitCounts = { passed: 0, failed: 0, skipped: 0 };
  for (const match of xml.matchAll(TESTCASE)) {
    const body = match[1] ?? '';
    if (/<(failure|error)\b/.test(body)) counts.failed += 1;
    else if (/<skipped\b/.test(body)) counts.skipped += 1;
    else counts.passed += 1;
  }
  return counts;
}

/** The summary line of a test run: `N passed, N failed` and `, N skipped` when any were skipped. */
export function summaryLine(counts: JUnitCounts): string {
  const line = `${counts.passed} passed, ${counts.failed} failed`;
  return counts.skipped > 0 ? `${line}, ${counts.skipped} skipped` : line;
}
