// The playground engine on hand-written logs: the event-time guard (on and off), the watermark
// rule, money and dates; the log editor keeps a log Debezium could have written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DAY_US, formatCents, parseCents, simulate } from '../../../src/lib/playground/engine.ts';
import type { ChangeEvent, Semantics } from '../../../src/lib/playground/engine.ts';
import { addOrder, editEvent, parseField, removeEvent } from '../../../src/lib/playground/edit.ts';
import { hasFutureDates, initialState, renderEvents, renderTables, run } from '../../../src/lib/playground/view.ts';

const us = (iso: string): number => Date.parse(`${iso}Z`) * 1000;
const MIN = 60_000_000;
const LAB: Semantics = {
  watermarkDelayDays: 30,
  windowDays: 30,
  recencyDays: 30,
  guardToleranceUs: null,
  naiveWindowDays: 30,
  naiveWatermarkDays: 30,
  naiveTime: 'order_date',
};

function create(order: number, customer: number, date: string, amount: string, lsn: number, commit = us(date) + MIN): ChangeEvent {
  return { op: 'c', order, lsn, commit, after: { customer, date: us(date), status: 'pending', amount }, before: null };
}

/** Orders of one customer, one typed with 2099, then two more batches of normal orders. */
function typoLog(): ChangeEvent[] {
  return [
    create(1, 7, '2026-03-02T10:00', '30.00', 100),
    create(2, 7, '2099-03-03T10:00', '15.00', 110, us('2026-03-03T10:01')),
    create(3, 7, '2026-03-04T10:00', '25.00', 120),
    create(4, 7, '2026-03-05T10:00', '40.00', 130),
  ];
}

test('money is exact cents; bad amounts are refused', () => {
  assert.equal(parseCents('120.00'), 12000);
  assert.equal(parseCents('0.5'), 50);
  assert.equal(parseCents('-1.05'), -105);
  assert.equal(formatCents(99999999999), '999999999.99');
  assert.equal(formatCents(-105), '-1.05');
  assert.throws(() => parseCents('1.005'), /at most 2 places/);
  assert.throws(() => parseCents('abc'), /at most 2 places/);
});

test('without the guard, a 2099 order moves the watermark to 2099 and rows are dropped one batch later', () => {
  const run1 = simulate(typoLog(), { ...LAB, batchSize: 1, readAt: [us('2026-03-05T12:00')] });
  const [b0, b1, b2, b3] = run1.batches;
  assert.equal(b1.nextWatermark, Date.parse('2099-03-03T10:00Z') - 30 * 86_400_000);
  assert.equal(b2.watermark, b1.nextWatermark);
  assert.equal(b2.dropped, 0, 'batch 2 filters late rows with batch 1’s watermark (still 2026)');
  assert.deepEqual(b2.tiles, [[7, '2026-03-04', 1, '25.00', us('2026-03-04T10:00')]]);
  assert.equal(b3.dropped, 1, 'batch 3 filters with the 2099 watermark');
  assert.deepEqual(b3.lateEvents, [3]);
  assert.deepEqual(b3.tiles, []);
  assert.deepEqual(b0.guarded, []);
  // Read on 2026-03-05: the 2099 order is not in the window; order 4 was dropped.
  assert.deepEqual(b3.features[0], [[7, 2, '55.00', us('2026-03-04T10:00'), 1]]);
});

test('with the guard, the 2099 version reaches no tile and no watermark, and later orders count', () => {
  const run1 = simulate(typoLog(), { ...LAB, guardToleranceUs: DAY_US, batchSize: 1, readAt: [us('2026-03-05T12:00')] });
  assert.deepEqual(run1.batches[1].guarded, [1]);
  assert.deepEqual(run1.batches[1].tiles, []);
  assert.equal(run1.batches[1].nextWatermark, Date.parse('2026-03-02T10:00Z') - 30 * 86_400_000);
  assert.equal(run1.batches.reduce((n, b) => n + b.dropped, 0), 0);
  assert.deepEqual(run1.batches[3].features[0], [[7, 3, '95.00', us('2026-03-05T10:00'), 0]]);
  // An update that types 2099 into a counted order: the old version is retracted, the new one does not count.
  const log = [create(1, 7, '2026-03-02T10:00', '30.00', 100)];
  log.push({ ...log[0], op: 'u', lsn: 120, commit: us('2026-03-03T09:00'), before: log[0].after, after: { ...log[0].after!, date: us('2099-03-02T10:00') } });
  const run2 = simulate(log, { ...LAB, guardToleranceUs: DAY_US, batchSize: 1, readAt: [us('2026-03-03T12:00')] });
  assert.deepEqual(run2.batches[1].tiles, [[7, '2026-03-02', 0, '0.00', null]]);
  assert.deepEqual(run2.batches[1].features[0], [[7, 0, '0.00', null, null]]);
  assert.ok(hasFutureDates(log));
  assert.ok(!hasFutureDates(typoLog().filter((e) => e.order !== 2)));
});

test('recency can look further back than the 30-day window (the recency horizon is a parameter)', () => {
  const log = [create(1, 7, '2026-01-02T10:00', '30.00', 100)];
  const at = [us('2026-03-05T12:00')];
  assert.deepEqual(simulate(log, { ...LAB, batchSize: 1, readAt: at }).batches[0].features[0], [[7, 0, '0.00', null, null]]);
  assert.deepEqual(simulate(log, { ...LAB, recencyDays: 365, watermarkDelayDays: 365, batchSize: 1, readAt: at }).batches[0].features[0], [
    [7, 0, '0.00', us('2026-01-02T10:00'), 62],
  ]);
});

test('a batch size below 1 is refused', () => {
  assert.throws(() => simulate(typoLog(), { ...LAB, batchSize: 0, readAt: [] }), /batch size/);
});

test('editing an image also edits its redelivery and the next change’s before image', () => {
  const c = create(1, 7, '2026-03-02T10:00', '30.00', 100);
  const u: ChangeEvent = { ...c, op: 'u', lsn: 120, commit: c.commit + MIN, before: c.after, after: { ...c.after!, amount: '35.00' } };
  const log = [c, { ...c }, u];
  const edited = editEvent(log, 0, 'date', parseField('date', '2026-03-01T08:30'));
  assert.equal(edited[0].after!.date, us('2026-03-01T08:30'));
  assert.equal(edited[1].after!.date, us('2026-03-01T08:30'), 'the redelivered message changes with it');
  assert.equal(edited[2].before!.date, us('2026-03-01T08:30'), 'the next change’s before image');
  assert.equal(edited[2].after!.date, us('2026-03-02T10:00'), 'the next change’s after image stays');
  assert.equal(log[0].after!.date, us('2026-03-02T10:00'), 'the input log is not mutated');
  assert.throws(() => editEvent([{ ...c, op: 'd', after: null, before: c.after }], 0, 'amount', '1.00'), /удаления/);
});

test('field values are checked with Russian messages', () => {
  assert.equal(parseField('amount', '12,5'), '12.50');
  assert.equal(parseField('customer', '42'), 42);
  assert.equal(parseField('status', 'cancelled'), 'cancelled');
  assert.equal(parseField('date', '2099-03-04T09:00'), us('2099-03-04T09:00'));
  assert.throws(() => parseField('date', '2026-02-30T10:00'), /Дата/);
  assert.throws(() => parseField('customer', '0'), /Клиент/);
  assert.throws(() => parseField('amount', '1.234'), /at most 2 places/);
  assert.throws(() => parseField('status', 'Отменён'), /Статус/);
});

test('adding and removing events', () => {
  const log = typoLog();
  const added = addOrder(log, { customer: 9 });
  const last = added[added.length - 1];
  assert.equal(last.order, 5);
  assert.equal(last.lsn, 146);
  assert.equal(last.commit, us('2026-03-05T10:01') + MIN);
  assert.deepEqual(last.after, { customer: 9, date: last.commit, status: 'pending', amount: '10.00' });
  assert.deepEqual(removeEvent(added, 4), log);
});

const fixtures = fileURLToPath(new URL('../../../labs/feature-engineering/playground_fixtures/', import.meta.url));
const load = (name: string) => JSON.parse(readFileSync(`${fixtures}${name}.json`, 'utf8'));

test('correcting the typo in the editor gives exactly the corrected log Spark ran', () => {
  const typo = load('typo_date');
  const fixed = load('typo_date_fixed');
  const index = typo.events.findIndex((e: ChangeEvent) => e.after?.date === us('2099-03-09T10:00'));
  assert.ok(index >= 0);
  assert.deepEqual(editEvent(typo.events, index, 'date', parseField('date', '2026-03-09T10:00')), fixed.events);
});

test('the rendered tables escape nothing unexpected and show every event', () => {
  const preset = load('double_count');
  const state = initialState(preset);
  const sim = run(state);
  state.step = sim.batches.length;
  const events = renderEvents(state, sim);
  assert.equal(events.match(/<tr class="pg-ev/g)?.length, preset.events.length);
  assert.match(renderTables(state, sim), /<th scope="row">2001<\/th><td>1<\/td><td>120\.00<\/td>/);
});

test('an empty log (every event deleted) still renders', () => {
  const preset = load('typo_date');
  const state = { ...initialState(preset), log: [] };
  const sim = run(state);
  assert.equal(sim.batches.length, 0);
  assert.match(renderTables(state, sim), /пусто/);
  assert.equal(renderEvents(state, sim).includes('<tr class="pg-ev'), false);
});
