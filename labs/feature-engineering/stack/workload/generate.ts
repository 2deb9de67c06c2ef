/**
 * Workload generator for the lab's `inventory` database: customers and products, then
 * orders with order lines at a steady rate, mixed with amount corrections,
 * cancellations, deletes and occasional back-dated orders, all from a fixed seed.
 *
 * Every change is one transaction; after its COMMIT one JSON line is appended to the
 * output file with the transaction's commit time from PostgreSQL
 * (`pg_xact_commit_timestamp`, needs `track_commit_timestamp = on`), so that the
 * freshness benchmark can measure commit → feature visible.
 *
 *   node stack/workload/generate.ts --dsn postgresql://postgres:postgres@127.0.0.1:5432/inventory \
 *     --seed 7 --customers 50 --products 20 --changes 2000 --rate 50 --out changes.jsonl
 *
 * Flags: --dsn (or env PG_DSN), --seed, --customers, --products, --changes (number of
 * transactions after the setup), --rate (transactions per second; 0 = as fast as
 * possible), --out (JSON lines, appended), --mix default|inserts (inserts = only new
 * orders, on today's date), --backdated-share, --too-late-share.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

/** One committed change, as written to the output file. */
export interface ChangeRecord {
  seq: number;
  kind: 'order_created' | 'amount_corrected' | 'order_cancelled' | 'order_deleted';
  order_id: number;
  customer_id: number;
  /** The order's business time (UTC, ISO 8601) after the change; null for a delete. */
  order_date: string | null;
  /** Order lines of a created order: [item_id, product_id, quantity, unit_price]. */
  items: Array<[number, number, number, string]>;
  total_amount: string | null;
  /** PostgreSQL commit time of the transaction, microseconds since the epoch. */
  commit_ts_us: number;
  /** Wall clock right after COMMIT returned, milliseconds since the epoch. */
  client_commit_ms: number;
}

export interface Options {
  dsn: string;
  seed: number;
  customers: number;
  products: number;
  changes: number;
  rate: number;
  out: string;
  mix: 'default' | 'inserts';
  backdatedShare: number;
  tooLateShare: number;
}

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same workload. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cents → "123.45" (exact: amounts are handled in integer cents). */
export function centsToDecimal(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** A UTC timestamp for a `TIMESTAMP` (without time zone) column. */
export function pgTimestamp(d: Date): string {
  return d.toISOString().replace('T', ' ').replace('Z', '');
}

const DAY_MS = 86_400_000;

interface LiveOrder {
  id: number;
  customerId: number;
  orderDate: string;
  totalCents: number;
}

export async function run(opts: Options): Promise<number> {
  const rnd = mulberry32(opts.seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const client = new pg.Client({ connectionString: opts.dsn });
  await client.connect();
  mkdirSync(dirname(opts.out), { recursive: true });
  try {
    await client.query('SET search_path TO inventory');
    const tc = await client.query("SELECT current_setting('track_commit_timestamp') AS on");
    if (tc.rows[0].on !== 'on') {
      throw new Error('workload: track_commit_timestamp must be on to record commit times');
    }
    // --- customers and products (added until the requested counts exist)
    const nCust = Number((await client.query('SELECT count(*) AS n FROM customers')).rows[0].n);
    for (let i = nCust; i < opts.customers; i++) {
      await client.query(
        'INSERT INTO customers (first_name, last_name, email) VALUES ($1, $2, $3)',
        [`Customer${i + 1}`, `Seed${opts.seed}`, `c${i + 1}.s${opts.seed}.${Date.now()}@example.com`],
      );
    }
    const nProd = Number((await client.query('SELECT count(*) AS n FROM products')).rows[0].n);
    for (let i = nProd; i < opts.products; i++) {
      const cents = 100 + Math.floor(rnd() * 20_000);
      await client.query(
        'INSERT INTO products (name, description, price, quantity) VALUES ($1, $2, $3, $4)',
        [`Product ${i + 1}`, 'generated', centsToDecimal(cents), 1000],
      );
    }
    const customers = (await client.query('SELECT id FROM customers ORDER BY id')).rows.map((r) => Number(r.id));
    const products = (await client.query('SELECT id, price FROM products ORDER BY id')).rows.map((r) => ({
      id: Number(r.id),
      cents: Math.round(Number(r.price) * 100),
    }));
    const live: LiveOrder[] = [];

    const commitTime = async (xid: string): Promise<number> => {
      const r = await client.query(
        'SELECT (extract(epoch FROM pg_xact_commit_timestamp($1::xid)) * 1000000)::bigint AS us',
        [xid],
      );
      return Number(r.rows[0].us);
    };

    const t0 = Date.now();
    for (let seq = 0; seq < opts.changes; seq++) {
      if (opts.rate > 0) {
        const due = t0 + (seq * 1000) / opts.rate;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const roll = rnd();
      let kind: ChangeRecord['kind'] = 'order_created';
      if (opts.mix === 'default' && live.length > 5) {
        if (roll < 0.1) kind = 'amount_corrected';
        else if (roll < 0.16) kind = 'order_cancelled';
        else if (roll < 0.2) kind = 'order_deleted';
      }
      await client.query('BEGIN');
      const xid = String((await client.query('SELECT txid_current() % 4294967296 AS x')).rows[0].x);
      let rec: Omit<ChangeRecord, 'commit_ts_us' | 'client_commit_ms'>;
      if (kind === 'order_created') {
        const customerId = pick(customers);
        let date = new Date();
        if (opts.mix === 'default') {
          const r2 = rnd();
          if (r2 < opts.tooLateShare) date = new Date(date.getTime() - 45 * DAY_MS);
          else if (r2 < opts.tooLateShare + opts.backdatedShare) {
            date = new Date(date.getTime() - (1 + Math.floor(rnd() * 5)) * DAY_MS);
          }
        }
        const nItems = 1 + Math.floor(rnd() * 3);
        const lines = Array.from({ length: nItems }, () => {
          const p = pick(products);
          return { productId: p.id, quantity: 1 + Math.floor(rnd() * 4), cents: p.cents };
        });
        const totalCents = lines.reduce((s, l) => s + l.quantity * l.cents, 0);
        const orderDate = pgTimestamp(date);
        const o = await client.query(
          'INSERT INTO orders (customer_id, order_date, status, total_amount) VALUES ($1, $2, $3, $4) RETURNING id',
          [customerId, orderDate, 'pending', centsToDecimal(totalCents)],
        );
        const orderId = Number(o.rows[0].id);
        const items: ChangeRecord['items'] = [];
        for (const l of lines) {
          const it = await client.query(
            'INSERT INTO order_items (order_id, product_id, quantity, unit_price) VALUES ($1, $2, $3, $4) RETURNING id',
            [orderId, l.productId, l.quantity, centsToDecimal(l.cents)],
          );
          items.push([Number(it.rows[0].id), l.productId, l.quantity, centsToDecimal(l.cents)]);
        }
        live.push({ id: orderId, customerId, orderDate, totalCents });
        rec = {
          seq, kind, order_id: orderId, customer_id: customerId, order_date: orderDate,
          items, total_amount: centsToDecimal(totalCents),
        };
      } else {
        const idx = Math.floor(rnd() * live.length);
        const o = live[idx];
        if (kind === 'amount_corrected') {
          o.totalCents = Math.max(100, Math.round(o.totalCents * (0.5 + rnd())));
          await client.query('UPDATE orders SET total_amount = $1 WHERE id = $2', [centsToDecimal(o.totalCents), o.id]);
        } else if (kind === 'order_cancelled') {
          await client.query("UPDATE orders SET status = 'cancelled' WHERE id = $1", [o.id]);
          live.splice(idx, 1);
        } else {
          await client.query('DELETE FROM orders WHERE id = $1', [o.id]);
          live.splice(idx, 1);
        }
        rec = {
          seq, kind, order_id: o.id, customer_id: o.customerId,
          order_date: kind === 'order_deleted' ? null : o.orderDate, items: [],
          total_amount: kind === 'order_deleted' ? null : centsToDecimal(o.totalCents),
        };
      }
      await client.query('COMMIT');
      const clientCommitMs = Date.now();
      const full: ChangeRecord = { ...rec, commit_ts_us: await commitTime(xid), client_commit_ms: clientCommitMs };
      appendFileSync(opts.out, `${JSON.stringify(full)}\n`);
    }
    return opts.changes;
  } finally {
    await client.end();
  }
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      dsn: { type: 'string' },
      seed: { type: 'string', default: '7' },
      customers: { type: 'string', default: '50' },
      products: { type: 'string', default: '20' },
      changes: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '20' },
      out: { type: 'string', default: 'changes.jsonl' },
      mix: { type: 'string', default: 'default' },
      'backdated-share': { type: 'string', default: '0.05' },
      'too-late-share': { type: 'string', default: '0.01' },
    },
  });
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`workload: --${name} must be a non-negative number, got ${v}`);
    return n;
  };
  const dsn = values.dsn ?? process.env.PG_DSN;
  if (!dsn) throw new Error('workload: --dsn (or env PG_DSN) is required');
  if (values.mix !== 'default' && values.mix !== 'inserts') {
    throw new Error(`workload: --mix must be default or inserts, got ${values.mix}`);
  }
  return {
    dsn,
    seed: num('seed', values.seed),
    customers: Math.max(1, num('customers', values.customers)),
    products: Math.max(1, num('products', values.products)),
    changes: num('changes', values.changes),
    rate: num('rate', values.rate),
    out: values.out!,
    mix: values.mix,
    backdatedShare: num('backdated-share', values['backdated-share']),
    tooLateShare: num('too-late-share', values['too-late-share']),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  run(parseOptions(process.argv.slice(2)))
    .then((n) => console.error(`workload: ${n} changes committed`))
    .catch((err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    });
}
