import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countJUnit, summaryLine } from '../../../scripts/lib/junit.ts';

test('pytest-style reports count failures, errors and skips', () => {
  const xml = `<?xml version="1.0"?><testsuites><testsuite name="pytest" tests="5">
<testcase classname="t" name="a" time="0.1" />
<testcase classname="t" name="b" time="0.1"><failure message="x">boom</failure></testcase>
<testcase classname="t" name="c" time="0.1"><error message="setup">bad</error></testcase>
<testcase classname="t" name="d" time="0.1"><skipped message="later" /></testcase>
<testcase classname="t" name="e &gt; f" time="0.1"><system-out>ok</system-out></testcase>
</testsuite></testsuites>`;
  assert.deepEqual(countJUnit(xml), { passed: 2, failed: 2, skipped: 1 });
});

test('node test runner reports with nested suites count every case once', () => {
  const xml = `<testsuites><testsuite name="outer"><testcase name="x > y" time="0.01" classname="test"/>
<testsuite name="inner"><testcase name="z" time="0.01" classname="test"><failure type="testCodeFailure" message="no">
stack</failure></testcase></testsuite></testsuite></testsuites>`;
  assert.deepEqual(countJUnit(xml), { passed: 1, failed: 1, skipped: 0 });
});

test('the summary line says passed and failed, and skipped only when any', () => {
  assert.equal(summaryLine({ passed: 3, failed: 0, skipped: 0 }), '3 passed, 0 failed');
  assert.equal(summaryLine({ passed: 3, failed: 1, skipped: 2 }), '3 passed, 1 failed, 2 skipped');
});
