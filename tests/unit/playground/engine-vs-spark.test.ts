// The playground's engine against Spark: every fixture the lab recorded from real runs of its own
// queries (labs/feature-engineering/playground_fixtures/, `npm run playground:fixtures`) is
// replayed through the TypeScript engine, which must give the same numbers, micro-batch by micro-batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { simulate } from '../../../src/lib/playground/engine.ts';
import type { BatchResult, ChangeEvent, FeatureRow, Semantics } from '../../../src/lib/playground/engine.ts';

const dir = fileURLToPath(new URL('../../../labs/feature-engineering/playground_fixtures/', import.meta.url));

interface Fixture {
  name: string;
  readAll: boolean;
  semantics: Semantics;
  batchSize: number;
  readAt: number[];
  events: ChangeEvent[];
  batches: Record<string, unknown>[];
}

const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const fixtures: Fixture[] = files.map((f) => JSON.parse(readFileSync(dir + f, 'utf8')) as Fixture);
const COMPARED = ['events', 'watermark', 'dropped', 'tiles', 'naiveWatermark', 'naiveDropped', 'naive'] as const;

/** The customers whose features a fixture holds after a batch: all seen so far, or (long logs) those the batch names. */
function readCustomers(fixture: Fixture, batch: BatchResult, last: boolean, seen: Set<number>): Set<number> {
  const named = new Set<number>();
  for (const i of batch.eventIndexes) {
    for (const image of [fixture.events[i].after, fixture.events[i].before]) if (image?.customer != null) named.add(image.customer);
  }
  for (const c of named) seen.add(c);
  return fixture.readAll || last ? seen : named;
}

test('the lab recorded fixtures: the lesson stories and generated logs of at least 1,000 events', () => {
  const names = fixtures.map((f) => f.name);
  for (const story of ['tumbling_window', 'double_count', 'processing_time', 'typo_date', 'typo_date_unguarded', 'typo_date_fixed', 'feature_stories']) {
    assert.ok(names.includes(story), `missing fixture ${story}: ${names.join(', ')}`);
  }
  const generated = fixtures.filter((f) => f.name.startsWith('generated'));
  assert.ok(generated.length >= 2, 'two generated logs');
  for (const f of generated) assert.ok(f.events.length >= 1000, `${f.name}: ${f.events.length} events`);
  const late = fixtures.reduce((n, f) => n + f.batches.reduce((m, b) => m + (b.dropped as number), 0), 0);
  assert.ok(late > 0, 'some fixture drops rows behind the watermark');
  const guarded = fixtures.find((f) => f.name === 'typo_date')!;
  assert.notEqual(guarded.semantics.guardToleranceUs, null, 'the lab runs with its event-time guard');
});

for (const fixture of fixtures) {
  test(`engine equals Spark, batch by batch: ${fixture.name} (${fixture.events.length} events, ${fixture.batches.length} micro-batches)`, () => {
    const run = simulate(fixture.events, { ...fixture.semantics, batchSize: fixture.batchSize, readAt: fixture.readAt });
    assert.equal(run.batches.length, fixture.batches.length, 'number of micro-batches');
    const seen = new Set<number>();
    for (const [i, expected] of fixture.batches.entries()) {
      const batch = run.batches[i];
      const actual = batch as unknown as Record<string, unknown>;
      for (const key of COMPARED) {
        assert.deepEqual(actual[key], expected[key], `${fixture.name} batch ${i}: ${key}`);
      }
      const wanted = readCustomers(fixture, batch, i === fixture.batches.length - 1, seen);
      const features = expected.features as FeatureRow[][];
      assert.equal(features.length, fixture.readAt.length, `${fixture.name} batch ${i}: one list per read time`);
      for (const [k, rows] of features.entries()) {
        assert.deepEqual(rows.map((r) => r[0]), [...wanted].sort((a, b) => a - b), `${fixture.name} batch ${i}: customers read`);
        const mine = batch.features[k].filter((r) => wanted.has(r[0]));
        assert.deepEqual(mine, rows, `${fixture.name} batch ${i}: features at T = ${new Date(fixture.readAt[k] / 1000).toISOString()}`);
      }
    }
  });
}
