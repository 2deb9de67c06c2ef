/**
 * The event-time playground's engine: the lab's customer-feature semantics in plain TypeScript
 * (no DOM), micro-batch by micro-batch, as Spark runs them. Proven equal to Spark on the
 * fixtures that `labs/feature-engineering/src/cdc_features/lab/playground.py` records.
 *
 * Times are µs since the epoch (UTC), as Debezium's MicroTimestamp; watermarks are ms, as
 * Spark reports them; money is text with 2 places ("120.00") outside, integer cents inside.
 */

export const DAY_US = 86_400_000_000;
const DAY_MS = 86_400_000;

/** One row image of `inventory.orders` as the lab's parser types it (null: the column is null). */
export interface OrderImage {
  customer: number | null;
  date: number | null;
  status: string | null;
  amount: string | null;
}

/** One change event of `inventory.orders`, in arrival order. */
export interface ChangeEvent {
  op: 'c' | 'u' | 'd' | 'r';
  order: number;
  lsn: number;
  /** Commit time in PostgreSQL (`source.ts_ms`), µs. */
  commit: number;
  after: OrderImage | null;
  before: OrderImage | null;
}

/** The lab's semantics at a point in its history; the fixtures name the ones they ran with. */
export interface Semantics {
  /** Watermark delay of the customer tiles' query (days). */
  watermarkDelayDays: number;
  /** The rolling window of order_count_30d / total_spend_30d (days ending with T's day). */
  windowDays: number;
  /** How far back last_order_ts / days_since_last_order look (days ending with T's day). */
  recencyDays: number;
  /** Event-time guard: an order_date more than this ahead of its commit does not count (µs); null: off. */
  guardToleranceUs: number | null;
  /** The naive query: tumbling window length and watermark delay (days), and its event time. */
  naiveWindowDays: number;
  naiveWatermarkDays: number;
  naiveTime: 'order_date' | 'commit';
}

export interface SimulationOptions extends Semantics {
  batchSize: number;
  /** Read times T (µs) at which features are read after every micro-batch. */
  readAt: number[];
  /** Keep a copy of the store after every micro-batch (for drawing); default false. */
  keepStore?: boolean;
}

/** A tile row: [customer, day (YYYY-MM-DD), order_count, total_spend, last_order_ts µs | null]. */
export type TileRow = [number, string, number, string, number | null];
/** A naive window row: [customer | null, window start, window end (YYYY-MM-DD), order_count_30d]. */
export type NaiveRow = [number | null, string, string, number];
/** Features at T: [customer, order_count_30d, total_spend_30d, last_order_ts µs | null, days_since_last_order | null]. */
export type FeatureRow = [number, number, string, number | null, number | null];

export interface BatchResult {
  batch: number;
  events: number;
  /** The watermark this micro-batch ran with (ms): the previous batches' max event time − delay. */
  watermark: number;
  /**
   * The watermark rows are filtered with: the previous micro-batch's (Spark 4 filters late rows
   * one batch behind the watermark it evicts state with). A (customer, day) group whose day ends
   * at or before it is dropped.
   */
  lateWatermark: number;
  /** Rows the tiles' state operator dropped as late (one per late (customer, day) group). */
  dropped: number;
  tiles: TileRow[];
  naiveWatermark: number;
  naiveLateWatermark: number;
  naiveDropped: number;
  naive: NaiveRow[];
  /** Per read time T (in `readAt` order): every customer seen so far, by id. */
  features: FeatureRow[][];
  /** Indexes (into the log) of the events of this batch; and of those dropped as late by the tiles' query. */
  eventIndexes: number[];
  lateEvents: number[];
  /** Events whose after image the event-time guard flagged (dead-lettered `future_event_time`). */
  guarded: number[];
  /** The watermark the next micro-batch will run with (ms). */
  nextWatermark: number;
  nextNaiveWatermark: number;
  /** The store after this micro-batch (only with `keepStore`). */
  store?: TileRow[];
}

export interface Simulation {
  batches: BatchResult[];
}

/** "120.00" → 12000. */
export function parseCents(text: string): number {
  const match = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!match) throw new Error(`not an amount with at most 2 places: ${JSON.stringify(text)}`);
  const cents = Number(match[2]) * 100 + Number((match[3] ?? '').padEnd(2, '0'));
  return match[1] ? -cents : cents;
}

/** 12000 → "120.00". */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** The UTC day number (days since 1970-01-01) of a µs time. */
export function dayOf(us: number): number {
  return Math.floor(us / DAY_US);
}

/** A day number as YYYY-MM-DD. */
export function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** µs → ms the way Spark's watermark tracker does it (Java long division). */
function toMs(us: number): number {
  return Math.trunc(us / 1000);
}

interface Version {
  order: number;
  lsn: number;
  rank: number;
  active: boolean;
  cents: number | null;
  ts: number;
}

function versionKey(v: Version): string {
  return `${v.order}|${v.lsn}|${v.rank}|${v.active}|${v.cents}|${v.ts}`;
}

/** The typed events after the event-time guard: a flagged image keeps its row but loses its date. */
function guarded(event: ChangeEvent, tolerance: number | null): { event: ChangeEvent; flagged: boolean } {
  if (tolerance === null) return { event, flagged: false };
  const future = (image: OrderImage | null): boolean =>
    image !== null && image.date !== null && image.date > event.commit + tolerance;
  const flaggedAfter = event.op !== 'd' && future(event.after);
  const flaggedBefore = (event.op === 'u' || event.op === 'd') && future(event.before);
  if (!flaggedAfter && !flaggedBefore) return { event, flagged: false };
  return {
    event: {
      ...event,
      after: flaggedAfter && event.after ? { ...event.after, date: null } : event.after,
      before: flaggedBefore && event.before ? { ...event.before, date: null } : event.before,
    },
    flagged: flaggedAfter,
  };
}

/** The version rows an event writes into customer tiles (after image; retraction of the before image). */
function tileVersions(e: ChangeEvent): { customer: number | null; version: Version }[] {
  const out: { customer: number | null; version: Version }[] = [];
  if (e.op !== 'd' && e.after && e.after.date !== null) {
    out.push({
      customer: e.after.customer,
      version: {
        order: e.order,
        lsn: e.lsn,
        rank: 1,
        active: (e.after.status ?? '') !== 'cancelled',
        cents: e.after.amount === null ? null : parseCents(e.after.amount),
        ts: e.after.date,
      },
    });
  }
  if ((e.op === 'u' || e.op === 'd') && e.before && e.before.date !== null) {
    out.push({
      customer: e.before.customer,
      version: { order: e.order, lsn: e.lsn, rank: 0, active: false, cents: null, ts: e.before.date },
    });
  }
  return out;
}

interface Tile {
  customer: number;
  day: number;
  count: number;
  cents: number;
  last: number | null;
}

/** A tile's absolute value from the versions written into it: newest version per order, active ones summed. */
function tileValue(customer: number, day: number, versions: Version[]): Tile {
  const distinct = [...new Map(versions.map((v) => [versionKey(v), v])).values()];
  const newest = distinct.filter(
    (v) => !distinct.some((o) => o.order === v.order && (o.lsn > v.lsn || (o.lsn === v.lsn && o.rank > v.rank))),
  );
  const counted = newest.filter((v) => v.active);
  let cents = 0;
  let last: number | null = null;
  for (const v of counted) {
    cents += v.cents ?? 0;
    if (last === null || v.ts > last) last = v.ts;
  }
  return { customer, day, count: counted.length, cents, last };
}

function tileRow(t: Tile): TileRow {
  return [t.customer, isoDay(t.day), t.count, formatCents(t.cents), t.last];
}

function compareRows(a: readonly unknown[], b: readonly unknown[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue;
    if (x === null) return -1;
    if (y === null) return 1;
    return (x as number | string) < (y as number | string) ? -1 : 1;
  }
  return a.length - b.length;
}

/** The lab's read path at T over the stored tiles of one customer (core/definitions.py). */
export function readFeatures(customer: number, tiles: Iterable<Tile>, at: number, s: Semantics): FeatureRow {
  const today = dayOf(at);
  let count = 0;
  let cents = 0;
  let last: number | null = null;
  for (const t of tiles) {
    if (t.count === 0) continue;
    if (t.day >= today - (s.windowDays - 1) && t.day <= today) {
      count += t.count;
      cents += t.cents;
    }
    if (t.day >= today - (s.recencyDays - 1) && t.day <= today && t.last !== null) {
      if (last === null || t.last > last) last = t.last;
    }
  }
  const daysSince = last === null ? null : Math.floor((at - last) / DAY_US);
  return [customer, count, formatCents(cents), last, daysSince];
}

/** Stored tiles → features of every customer at T, by customer id. */
function readAll(store: Map<string, Tile>, customers: number[], at: number, s: Semantics): FeatureRow[] {
  const byCustomer = new Map<number, Tile[]>();
  for (const t of store.values()) {
    const list = byCustomer.get(t.customer);
    if (list) list.push(t);
    else byCustomer.set(t.customer, [t]);
  }
  return [...customers].sort((a, b) => a - b).map((c) => readFeatures(c, byCustomer.get(c) ?? [], at, s));
}

/** Features of `customers` at T from a store's tile rows (as `BatchResult.store` holds them), by customer id. */
export function featuresAt(store: readonly TileRow[], customers: readonly number[], at: number, s: Semantics): FeatureRow[] {
  const tiles = new Map<string, Tile>();
  for (const [customer, day, count, spend, last] of store) {
    const d = Math.round(Date.parse(`${day}T00:00:00Z`) / DAY_MS);
    tiles.set(`${customer}|${d}`, { customer, day: d, count, cents: parseCents(spend), last });
  }
  return readAll(tiles, [...customers], at, s);
}

/** Run the log micro-batch by micro-batch through the lab's tiles query and the naive tumbling query. */
export function simulate(log: readonly ChangeEvent[], options: SimulationOptions): Simulation {
  if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
    throw new Error(`batch size must be a whole number ≥ 1, got ${options.batchSize}`);
  }
  const delayMs = options.watermarkDelayDays * DAY_MS;
  const naiveDelayMs = options.naiveWatermarkDays * DAY_MS;
  const naiveWindowUs = options.naiveWindowDays * DAY_US;

  const state = new Map<string, { customer: number; day: number; versions: Version[] }>();
  const naiveState = new Map<string, { customer: number | null; start: number; count: number }>();
  const store = new Map<string, Tile>();
  const seen: number[] = [];
  let watermark = 0;
  let naiveWatermark = 0;
  let lateWatermark = 0;
  let naiveLateWatermark = 0;
  const batches: BatchResult[] = [];

  for (let start = 0, batch = 0; start < log.length; start += options.batchSize, batch++) {
    const indexes: number[] = [];
    for (let i = start; i < Math.min(log.length, start + options.batchSize); i++) indexes.push(i);
    const flagged: number[] = [];
    const typed = indexes.map((i) => {
      const g = guarded(log[i], options.guardToleranceUs);
      if (g.flagged) flagged.push(i);
      return g.event;
    });

    // The lab's tiles query: versions → (customer, day) groups; late groups dropped, one row each.
    let maxMs: number | null = null;
    const groups = new Map<string, { customer: number; day: number; versions: Version[]; events: Set<number> }>();
    typed.forEach((e, k) => {
      for (const { customer, version } of tileVersions(e)) {
        const ms = toMs(version.ts);
        if (maxMs === null || ms > maxMs) maxMs = ms;
        if (customer === null) continue; // the parser never lets a null customer through
        const day = dayOf(version.ts);
        const key = `${customer}|${day}`;
        let g = groups.get(key);
        if (!g) groups.set(key, (g = { customer, day, versions: [], events: new Set() }));
        g.versions.push(version);
        g.events.add(indexes[k]);
      }
    });
    let dropped = 0;
    const late = new Set<number>();
    const tiles: TileRow[] = [];
    for (const [key, g] of groups) {
      if ((g.day + 1) * DAY_US <= lateWatermark * 1000) {
        dropped++;
        for (const i of g.events) late.add(i);
        continue;
      }
      let st = state.get(key);
      if (!st) state.set(key, (st = { customer: g.customer, day: g.day, versions: [] }));
      st.versions.push(...g.versions);
      const tile = tileValue(g.customer, g.day, st.versions);
      tiles.push(tileRow(tile));
      if (tile.count > 0) store.set(key, tile);
      else store.delete(key);
    }
    for (const [key, st] of state) if ((st.day + 1) * DAY_US <= watermark * 1000) state.delete(key);
    tiles.sort(compareRows);

    // The naive query: every event counted in its 30-day tumbling window (aligned to the epoch).
    let naiveMaxMs: number | null = null;
    const naiveGroups = new Map<string, { customer: number | null; start: number; rows: number }>();
    for (const e of typed) {
      const ts = options.naiveTime === 'commit' ? e.commit : e.op === 'd' ? null : (e.after?.date ?? null);
      if (ts === null) continue;
      const ms = toMs(ts);
      if (naiveMaxMs === null || ms > naiveMaxMs) naiveMaxMs = ms;
      const customer = e.op === 'd' ? null : (e.after?.customer ?? null);
      const windowStart = Math.floor(ts / naiveWindowUs) * naiveWindowUs;
      const key = `${customer}|${windowStart}`;
      const g = naiveGroups.get(key);
      if (g) g.rows++;
      else naiveGroups.set(key, { customer, start: windowStart, rows: 1 });
    }
    let naiveDropped = 0;
    const naive: NaiveRow[] = [];
    for (const [key, g] of naiveGroups) {
      if (g.start + naiveWindowUs <= naiveLateWatermark * 1000) {
        naiveDropped++;
        continue;
      }
      let st = naiveState.get(key);
      if (!st) naiveState.set(key, (st = { customer: g.customer, start: g.start, count: 0 }));
      st.count += g.rows;
      naive.push([g.customer, isoDay(g.start / DAY_US), isoDay((g.start + naiveWindowUs) / DAY_US), st.count]);
    }
    for (const [key, st] of naiveState) if (st.start + naiveWindowUs <= naiveWatermark * 1000) naiveState.delete(key);
    naive.sort(compareRows);

    for (const e of typed) {
      for (const image of [e.after, e.before]) {
        if (image && image.customer !== null && !seen.includes(image.customer)) seen.push(image.customer);
      }
    }
    const features = options.readAt.map((at) => readAll(store, seen, at, options));
    const nextWatermark = maxMs === null ? watermark : Math.max(watermark, maxMs - delayMs);
    const nextNaiveWatermark = naiveMaxMs === null ? naiveWatermark : Math.max(naiveWatermark, naiveMaxMs - naiveDelayMs);
    const result: BatchResult = {
      batch,
      events: indexes.length,
      watermark,
      lateWatermark,
      dropped,
      tiles,
      naiveWatermark,
      naiveLateWatermark,
      naiveDropped,
      naive,
      features,
      eventIndexes: indexes,
      lateEvents: [...late].sort((a, b) => a - b),
      guarded: flagged,
      nextWatermark,
      nextNaiveWatermark,
    };
    if (options.keepStore) result.store = [...store.values()].map(tileRow).sort(compareRows);
    batches.push(result);
    lateWatermark = watermark;
    naiveLateWatermark = naiveWatermark;
    watermark = nextWatermark;
    naiveWatermark = nextNaiveWatermark;
  }
  return { batches };
}
