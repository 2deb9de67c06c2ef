// The benchmark tables the lesson draws: the committed results files parse into every setting
// they hold, a new setting (Real-Time Mode) appears by itself, and the chart geometry is sound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dotChart, niceCeiling, parseFreshness, parseSinkWriters, ruNumber, settingLabel } from '../../../src/lib/bench-results.ts';

const root = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const results = (name: string) => readFileSync(join(root, 'labs/feature-engineering/bench/results', name), 'utf8');

test('the committed e2e.md gives every trigger setting with ordered percentiles', () => {
  const modes = parseFreshness(results('e2e.md'));
  assert.ok(modes.length >= 2, `${modes.length} settings`);
  for (const m of modes) {
    assert.ok(m.p50 > 0 && m.p50 <= m.p95 && m.p95 <= m.p99, JSON.stringify(m));
  }
  // every setting of the table is drawn, with the numbers of its customer row
  const text = results('e2e.md');
  const lines = text.split('\n');
  const start = lines.indexOf('| trigger | stage | p50 | p95 | p99 |');
  const rows = lines.slice(start + 2, lines.indexOf('', start)).map((l) => l.split('|').map((c) => c.trim()));
  assert.equal(modes.length, rows.filter((r) => r[1] !== '').length);
  const customerRows = rows.filter((r) => r[2].startsWith('commit → customer '));
  assert.deepEqual(
    modes.map((m) => [m.p50, m.p95, m.p99]),
    customerRows.map((r) => r.slice(3, 6).map(Number)),
  );
  assert.ok(modes.some((m) => /real-time/i.test(m.setting)), 'a Real-Time Mode setting is drawn');
});

test('a setting the benchmark adds later (Real-Time Mode) is read the same way', () => {
  const md = [
    '| trigger | stage | p50 | p95 | p99 |',
    '|---|---|---|---|---|',
    '| `500 milliseconds` | commit → customer tile visible | 1.95 | 2.92 | 3.32 |',
    '| | commit → product line visible | 2.79 | 3.96 | 4.50 |',
    '| `realTime 5 seconds` | commit → Kafka record (Debezium) | 0.10 | 0.17 | 0.19 |',
    '| | commit → customer tile visible | 0.21 | 0.35 | 0.61 |',
    '',
    '| trigger | orders measured | not seen |',
  ].join('\n');
  assert.deepEqual(parseFreshness(md), [
    { setting: '500 milliseconds', p50: 1.95, p95: 2.92, p99: 3.32 },
    { setting: 'realTime 5 seconds', p50: 0.21, p95: 0.35, p99: 0.61 },
  ]);
  assert.equal(settingLabel('500 milliseconds'), 'микробатчи, триггер 500 мс');
  assert.equal(settingLabel('2 seconds'), 'микробатчи, триггер 2 с');
  assert.equal(settingLabel('realTime 5 seconds'), 'Real-Time Mode, контрольная точка 5 с');
  assert.equal(settingLabel('Real-Time Mode (`realTime="5 minutes"`) + fact writer'), 'Real-Time Mode, контрольная точка 5 мин');
});

test('a results file without the table, or with percentiles out of order, fails naming it', () => {
  assert.throws(() => parseFreshness('# nothing here', 'e2e.md'), /e2e\.md: no table with the header \| trigger \| stage/);
  const bad = '| trigger | stage | p50 | p95 | p99 |\n|---|---|---|---|---|\n| `2 seconds` | commit → customer tile visible | 3 | 2 | 4 |';
  assert.throws(() => parseFreshness(bad, 'e2e.md'), /setting 2 seconds: percentiles out of order/);
});

test('the committed lab.md gives the two Redis writers', () => {
  const writers = parseSinkWriters(results('lab.md'));
  assert.deepEqual(writers.map((w) => w.writer), ['write_to_feature_store', 'write_rows_from_driver']);
  assert.ok(writers[1].seconds > writers[0].seconds, 'the driver-side writer is the slow one');
});

test('the dot chart puts values on one axis from 0 to a nice ceiling', () => {
  assert.equal(niceCeiling(5.64), 10);
  assert.equal(niceCeiling(3.32), 5);
  assert.equal(niceCeiling(34.29), 50);
  assert.equal(niceCeiling(0.61), 1);
  const chart = dotChart([
    { label: 'a', values: [{ name: 'p50', value: 1 }, { name: 'p99', value: 4 }] },
    { label: 'b', values: [{ name: 'p50', value: 2 }, { name: 'p99', value: 5 }] },
  ]);
  assert.equal(chart.axisMax, 5);
  const [a, b] = chart.rows;
  assert.ok(a.y < b.y);
  assert.equal(a.points[0].x, chart.x0 + (chart.x1 - chart.x0) / 5);
  assert.equal(b.points[1].x, chart.x1);
  assert.deepEqual(chart.ticks.map((t) => t.label), ['0', '1,25', '2,50', '3,75', '5']);
  assert.equal(ruNumber(0.4), '0,40');
});
