/**
 * The playground's views as HTML text (no DOM): the picture (SVG), the status line and the
 * tables under it. The page renders them at build time for the first preset (readers without
 * JavaScript see that state) and the island renders the same functions after every change.
 */
import { DAY_US, dayOf, featuresAt, isoDay, simulate } from './engine.ts';
import type { BatchResult, ChangeEvent, FeatureRow, Semantics, Simulation, TileRow } from './engine.ts';

/** A preset of the playground: one of the lesson's stories as the lab recorded it. */
export interface Preset {
  name: string;
  title: string;
  semantics: Semantics;
  batchSize: number;
  readAt: number[];
  events: ChangeEvent[];
}

/** Everything the reader can change. */
export interface ViewState {
  preset: string;
  log: ChangeEvent[];
  semantics: Semantics;
  batchSize: number;
  /** Read time T, µs. */
  at: number;
  /** Micro-batches processed so far (0 … number of batches). */
  step: number;
  /** The customer drawn in the picture's tile and window strips. */
  customer: number;
}

/** The guard's tolerance when the reader switches it on (the lab's default, 1 day). */
export const GUARD_TOLERANCE_US = DAY_US;

export function initialState(preset: Preset): ViewState {
  const customers = customersOf(preset.events);
  return {
    preset: preset.name,
    log: preset.events,
    semantics: preset.semantics,
    batchSize: preset.batchSize,
    at: preset.readAt[0] ?? 0,
    step: 0,
    customer: customers[0] ?? 0,
  };
}

export function run(state: ViewState): Simulation {
  return simulate(state.log, { ...state.semantics, batchSize: state.batchSize, readAt: [state.at], keepStore: true });
}

/** Every customer named by the log, in order of appearance. */
export function customersOf(log: readonly ChangeEvent[]): number[] {
  const out: number[] = [];
  for (const e of log) {
    for (const image of [e.after, e.before]) {
      if (image && image.customer !== null && !out.includes(image.customer)) out.push(image.customer);
    }
  }
  return out;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** µs → "2026-03-10 12:00" (UTC). */
export function formatTime(us: number | null): string {
  if (us === null) return '—';
  return new Date(Math.floor(us / 1000)).toISOString().slice(0, 16).replace('T', ' ');
}

/** µs → the value of an <input> of a date and time: "2026-03-10T12:00". */
export function inputTime(us: number | null): string {
  return us === null ? '' : new Date(Math.floor(us / 1000)).toISOString().slice(0, 16);
}

/** A watermark (ms) as text; 0 is Spark's "no watermark yet". */
export function formatWatermark(ms: number): string {
  return ms === 0 ? 'нет (1970-01-01)' : formatTime(ms * 1000);
}

/** The event's date as the picture places it: the after image's, or the before image's for a delete. */
function eventDate(e: ChangeEvent): number | null {
  return e.op === 'd' ? (e.before?.date ?? null) : (e.after?.date ?? null);
}

function eventCustomer(e: ChangeEvent): number | null {
  return e.op === 'd' ? (e.before?.customer ?? null) : (e.after?.customer ?? null);
}

export type EventFate = 'pending' | 'counted' | 'late' | 'guarded';

/** What happened to each event of the log after `step` micro-batches. */
export function fates(sim: Simulation, step: number, total: number): EventFate[] {
  const out: EventFate[] = new Array<EventFate>(total).fill('pending');
  for (const b of sim.batches.slice(0, step)) {
    for (const i of b.eventIndexes) out[i] = 'counted';
    for (const i of b.lateEvents) out[i] = 'late';
    for (const i of b.guarded) out[i] = 'guarded';
  }
  return out;
}

const FATE_TEXT: Record<EventFate, string> = {
  pending: 'ещё не пришло',
  counted: 'обработано',
  late: 'отброшено водяным знаком',
  guarded: 'дата из будущего: не учтено',
};

/** The naive query's stored value per customer after `step` batches: the last row it upserted. */
export function naiveStored(sim: Simulation, step: number): Map<number, { count: number; window: string }> {
  const stored = new Map<number, { count: number; window: string }>();
  for (const b of sim.batches.slice(0, step)) {
    for (const [customer, start, end, count] of b.naive) {
      if (customer !== null) stored.set(customer, { count, window: `[${start}, ${end})` });
    }
  }
  return stored;
}

/** The naive query's current value of every (customer, window) after `step` batches. */
function naiveWindows(sim: Simulation, step: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const b of sim.batches.slice(0, step)) {
    for (const [customer, start, , count] of b.naive) out.set(`${customer}|${start}`, count);
  }
  return out;
}

function storeAfter(sim: Simulation, step: number): TileRow[] {
  return step === 0 ? [] : (sim.batches[step - 1].store ?? []);
}

/** Features of every customer seen in the processed batches, read at T from the store after `step` batches. */
export function featuresAfter(state: ViewState, sim: Simulation, step: number): FeatureRow[] {
  const seen = customersOf(sim.batches.slice(0, step).flatMap((b) => b.eventIndexes.map((i) => state.log[i])));
  return featuresAt(storeAfter(sim, step), seen, state.at, state.semantics);
}

// ---------------------------------------------------------------------------------------
// The picture.
// ---------------------------------------------------------------------------------------

const W = 720;
const LEFT = 112;
const RIGHT = 704;
const ROWS_TOP = 30;
const ROWS_BOTTOM = 196;
const TILES_Y = 214;
const WINDOWS_Y = 252;
const STRIP_H = 26;
export const PICTURE_HEIGHT = 304;

interface Axis {
  from: number;
  to: number;
  x: (us: number) => number;
  inside: (us: number) => boolean;
}

/** The time axis: the log's plausible dates (within a day of their commit) and T, padded to whole days. */
function axisOf(state: ViewState): Axis {
  const times: number[] = [state.at];
  for (const e of state.log) {
    times.push(e.commit);
    for (const image of [e.after, e.before]) {
      if (image?.date != null && image.date <= e.commit + DAY_US) times.push(image.date);
    }
  }
  let from = (dayOf(Math.min(...times)) - 1) * DAY_US;
  let to = (dayOf(Math.max(...times)) + 2) * DAY_US;
  if (to - from < 12 * DAY_US) {
    const pad = Math.ceil((12 * DAY_US - (to - from)) / 2 / DAY_US) * DAY_US;
    from -= pad;
    to += pad;
  }
  const x = (us: number): number => LEFT + ((Math.min(Math.max(us, from), to) - from) / (to - from)) * (RIGHT - LEFT);
  return { from, to, x, inside: (us) => us >= from && us <= to };
}

function ticks(axis: Axis): string {
  const days = (axis.to - axis.from) / DAY_US;
  const every = Math.max(1, Math.ceil(days / 7));
  let out = '';
  for (let d = dayOf(axis.from) + 1; d * DAY_US < axis.to; d += every) {
    const x = axis.x(d * DAY_US).toFixed(1);
    out += `<line class="pg-grid" x1="${x}" x2="${x}" y1="${ROWS_TOP - 6}" y2="${WINDOWS_Y + STRIP_H}"/>`;
    out += `<text class="pg-tick" x="${x}" y="${PICTURE_HEIGHT - 8}" text-anchor="middle">${isoDay(d).slice(5)}</text>`;
  }
  return out;
}

function marker(fate: EventFate, x: number, y: number): string {
  const p = (n: number): string => n.toFixed(1);
  if (fate === 'late') return `<path class="pg-late" d="M${p(x - 5)} ${p(y - 5)}L${p(x + 5)} ${p(y + 5)}M${p(x - 5)} ${p(y + 5)}L${p(x + 5)} ${p(y - 5)}"/>`;
  if (fate === 'guarded') return `<path class="pg-guarded" d="M${p(x)} ${p(y - 6)}L${p(x + 6)} ${p(y + 5)}L${p(x - 6)} ${p(y + 5)}Z"/>`;
  return `<circle class="pg-${fate}" cx="${p(x)}" cy="${p(y)}" r="5"/>`;
}

/** The picture: event time across, micro-batches down; the watermark, T, daily tiles and tumbling windows. */
export function renderPicture(state: ViewState, sim: Simulation): string {
  const axis = axisOf(state);
  const n = Math.max(1, sim.batches.length);
  const rowH = (ROWS_BOTTOM - ROWS_TOP) / n;
  const rowY = (b: number): number => ROWS_TOP + (b + 0.5) * rowH;
  const fate = fates(sim, state.step, state.log.length);
  let svg = `<svg class="pg-svg" viewBox="0 0 ${W} ${PICTURE_HEIGHT}" role="img" aria-labelledby="pg-picture-title"><title id="pg-picture-title">Схема: по горизонтали время события, по вертикали микробатчи; водяной знак, момент T, дневные плитки и tumbling-окна клиента ${state.customer}. Все значения — в таблицах ниже.</title>`;
  svg += ticks(axis);
  for (let b = 0; b < sim.batches.length; b++) {
    const y = rowY(b);
    const cls = b < state.step ? 'pg-label' : 'pg-label pg-dim';
    if (rowH >= 9 || b % Math.ceil(9 / rowH) === 0) {
      svg += `<text class="${cls}" x="${LEFT - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end">батч ${b}</text>`;
    }
  }
  // The watermark each processed batch ran with, as a step line.
  let path = '';
  for (let b = 0; b < Math.min(state.step, sim.batches.length); b++) {
    const w = sim.batches[b].watermark;
    if (w === 0) continue;
    const x = axis.x(w * 1000).toFixed(1);
    const top = (ROWS_TOP + b * rowH).toFixed(1);
    const bottom = (ROWS_TOP + (b + 1) * rowH).toFixed(1);
    path += `${path ? 'L' : 'M'}${x} ${top}L${x} ${bottom}`;
  }
  if (path) svg += `<path class="pg-watermark" d="${path}"/>`;
  state.log.forEach((e, i) => {
    const batch = Math.floor(i / state.batchSize);
    const date = eventDate(e);
    if (date === null) return;
    const x = axis.x(date);
    const y = rowY(batch);
    svg += `<g>${marker(fate[i], x, y)}<title>событие ${i + 1}: заказ ${e.order}, ${e.op}, ${formatTime(date)} — ${FATE_TEXT[fate[i]]}</title></g>`;
    if (!axis.inside(date)) {
      svg += `<text class="pg-far" x="${(x - 8).toFixed(1)}" y="${(y - 7).toFixed(1)}" text-anchor="end">→ ${formatTime(date).slice(0, 10)}</text>`;
    }
  });
  const last = sim.batches[Math.min(state.step, sim.batches.length) - 1];
  if (last && last.nextWatermark > 0) {
    const us = last.nextWatermark * 1000;
    const x = axis.x(us);
    const date = formatTime(us).slice(0, 10);
    const text = us > axis.to ? `водяной знак → ${date}` : us < axis.from ? `← водяной знак ${date}` : 'водяной знак';
    const anchor = x > RIGHT - 120 ? 'end' : x < LEFT + 120 ? 'start' : 'middle';
    svg += `<text class="pg-wm-label" x="${x.toFixed(1)}" y="11" text-anchor="${anchor}">${text}</text>`;
  }
  // Strips of the chosen customer: its stored daily tiles and the naive 30-day windows.
  svg += `<text class="pg-label" x="${LEFT - 8}" y="${TILES_Y + 17}" text-anchor="end">плитки ${state.customer}</text>`;
  svg += `<text class="pg-label" x="${LEFT - 8}" y="${WINDOWS_Y + 17}" text-anchor="end">окна ${state.semantics.naiveWindowDays} дн.</text>`;
  const today = dayOf(state.at);
  const windowFrom = axis.x((today - state.semantics.windowDays + 1) * DAY_US);
  const windowTo = axis.x((today + 1) * DAY_US);
  svg += `<rect class="pg-window" x="${windowFrom.toFixed(1)}" y="${TILES_Y - 3}" width="${Math.max(2, windowTo - windowFrom).toFixed(1)}" height="${STRIP_H + 6}"/>`;
  for (const [customer, day, count] of storeAfter(sim, state.step)) {
    if (customer !== state.customer) continue;
    const d = dayOf(Date.parse(`${day}T00:00:00Z`) * 1000);
    if (!axis.inside(d * DAY_US)) continue;
    const x0 = axis.x(d * DAY_US);
    const width = Math.max(2, axis.x((d + 1) * DAY_US) - x0);
    svg += `<rect class="pg-tile" x="${x0.toFixed(1)}" y="${TILES_Y}" width="${width.toFixed(1)}" height="${STRIP_H}"/>`;
    if (width >= 9) svg += `<text class="pg-count" x="${(x0 + width / 2).toFixed(1)}" y="${TILES_Y + 17}" text-anchor="middle">${count}</text>`;
  }
  const windowUs = state.semantics.naiveWindowDays * DAY_US;
  const windows = naiveWindows(sim, state.step);
  for (let start = Math.floor(axis.from / windowUs) * windowUs; start < axis.to; start += windowUs) {
    const x0 = axis.x(start);
    const x1 = axis.x(start + windowUs);
    const count = windows.get(`${state.customer}|${isoDay(start / DAY_US)}`);
    svg += `<rect class="pg-bucket" x="${x0.toFixed(1)}" y="${WINDOWS_Y}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${STRIP_H}"/>`;
    if (count !== undefined && x1 - x0 >= 12) {
      svg += `<text class="pg-count" x="${((x0 + x1) / 2).toFixed(1)}" y="${WINDOWS_Y + 17}" text-anchor="middle">${count}</text>`;
    }
  }
  const tx = axis.x(state.at).toFixed(1);
  svg += `<line class="pg-t" x1="${tx}" x2="${tx}" y1="${ROWS_TOP - 6}" y2="${WINDOWS_Y + STRIP_H + 4}"/>`;
  svg += `<text class="pg-t-label" x="${tx}" y="${ROWS_TOP - 8}" text-anchor="middle">T</text>`;
  return `${svg}</svg>`;
}

// ---------------------------------------------------------------------------------------
// Text: the status line and the tables.
// ---------------------------------------------------------------------------------------

function batchWord(n: number): string {
  const last = n % 10;
  const lastTwo = n % 100;
  if (lastTwo >= 11 && lastTwo <= 14) return 'микробатчей';
  if (last === 1) return 'микробатч';
  if (last >= 2 && last <= 4) return 'микробатча';
  return 'микробатчей';
}

export function renderStatus(state: ViewState, sim: Simulation): string {
  const total = sim.batches.length;
  if (state.step === 0) {
    return `Обработано 0 из ${total} ${batchWord(total)}. Нажмите «Шаг», чтобы Spark обработал первый.`;
  }
  const b = sim.batches[state.step - 1];
  const dropped = sim.batches.slice(0, state.step).reduce((n, x) => n + x.dropped, 0);
  return (
    `Обработано ${state.step} из ${total} ${batchWord(total)}. Батч ${b.batch}: ${b.events} соб., ` +
    `водяной знак ${formatWatermark(b.watermark)}, следующий — ${formatWatermark(b.nextWatermark)}; ` +
    `отброшено строк: ${b.dropped} (всего ${dropped}).`
  );
}

function table(caption: string, head: string[], rows: string[][], cls = ''): string {
  const th = head.map((h) => `<th scope="col">${h}</th>`).join('');
  const body = rows.length
    ? rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('')
    : `<tr><td colspan="${head.length}">пусто</td></tr>`;
  return `<table class="pg-table ${cls}"><caption>${caption}</caption><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

/** Features at T (ours vs the naive stored value), the micro-batches and the store. */
export function renderTables(state: ViewState, sim: Simulation): string {
  const naive = naiveStored(sim, state.step);
  const features = featuresAfter(state, sim, state.step).map(([customer, count, spend, last, days]) => {
    const stored = naive.get(customer);
    return [
      String(customer),
      String(count),
      spend,
      days === null ? '—' : String(days),
      formatTime(last),
      stored ? `${stored.count} ${stored.window}` : '—',
    ];
  });
  const batches = sim.batches.slice(0, state.step).map((b: BatchResult) => [
    String(b.batch),
    String(b.events),
    formatWatermark(b.watermark),
    formatWatermark(b.lateWatermark),
    String(b.dropped),
    b.tiles.map(([c, day, count, spend]) => `${c}/${day}: ${count} (${spend})`).join('; ') || '—',
    b.naive.map(([c, start, , count]) => `${c ?? '—'}/${start}: ${count}`).join('; ') || '—',
  ]);
  const store = storeAfter(sim, state.step).map(([c, day, count, spend, last]) => [String(c), day, String(count), spend, formatTime(last)]);
  return (
    table(
      `Признаки в момент T = ${formatTime(state.at)} UTC`,
      ['клиент', `order_count_${state.semantics.windowDays}d`, `total_spend_${state.semantics.windowDays}d`, 'days_since_last_order', 'last_order_ts', `наивно: значение (окно ${state.semantics.naiveWindowDays} дн.)`],
      features,
      'pg-features',
    ) +
    table(
      'Микробатчи',
      ['батч', 'событий', 'водяной знак', 'отсев по знаку', 'отброшено строк', 'изменённые плитки: клиент/день: заказов (сумма)', 'наивные окна: клиент/начало: счётчик'],
      batches,
      'pg-batches',
    ) +
    table('Плитки в хранилище', ['клиент', 'день', 'заказов', 'сумма', 'последний заказ'], store, 'pg-store')
  );
}

/** The event list with its editors. */
export function renderEvents(state: ViewState, sim: Simulation): string {
  const fate = fates(sim, state.step, state.log.length);
  const rows = state.log.map((e, i) => {
    const n = i + 1;
    const image = e.after;
    const editable = image !== null;
    const input = (field: string, label: string, value: string, attrs = ''): string =>
      editable
        ? `<input class="pg-in pg-in-${field}" data-field="${field}" data-index="${i}" aria-label="${label}, событие ${n}" value="${escapeHtml(value)}" ${attrs}>`
        : '—';
    const status = editable
      ? `<select class="pg-in" data-field="status" data-index="${i}" aria-label="Статус, событие ${n}">${['pending', 'shipped', 'cancelled', ...(image.status && !['pending', 'shipped', 'cancelled'].includes(image.status) ? [image.status] : [])]
          .map((s) => `<option${s === image.status ? ' selected' : ''}>${escapeHtml(s)}</option>`)
          .join('')}</select>`
      : '—';
    return `<tr class="pg-ev pg-ev-${fate[i]}"><th scope="row">${n}</th><td>${Math.floor(i / state.batchSize)}</td><td>${e.op}</td><td>${e.order}</td><td>${input('customer', 'Клиент', String(image?.customer ?? ''), 'inputmode="numeric" size="5"')}</td><td>${input('date', 'Дата заказа (UTC)', inputTime(image?.date ?? null), 'size="16"')}</td><td>${status}</td><td>${input('amount', 'Сумма', image?.amount ?? '', 'inputmode="decimal" size="8"')}</td><td>${formatTime(e.commit)}</td><td>${FATE_TEXT[fate[i]]}</td><td><button type="button" class="pg-del" data-index="${i}" aria-label="Удалить событие ${n}">Удалить</button></td></tr>`;
  });
  return `<table class="pg-table pg-events"><caption>События (в порядке прихода)</caption><thead><tr><th scope="col">№</th><th scope="col">батч</th><th scope="col">op</th><th scope="col">заказ</th><th scope="col">клиент</th><th scope="col">order_date (UTC)</th><th scope="col">статус</th><th scope="col">сумма</th><th scope="col">коммит</th><th scope="col">судьба</th><th scope="col">действие</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}


/** The T slider: whole days from a few days before the log to 45 days after it. */
export function sliderRange(state: ViewState): { min: number; max: number; value: number } {
  const axis = axisOf(state);
  return { min: dayOf(axis.from) - 3, max: dayOf(axis.to) + 45, value: dayOf(state.at) };
}

/** Does the log hold an order date more than the guard's tolerance ahead of its commit? */
export function hasFutureDates(log: readonly ChangeEvent[]): boolean {
  return log.some((e) => [e.after, e.before].some((i) => i?.date != null && i.date > e.commit + GUARD_TOLERANCE_US));
}

/** The same log with the event-time guard on and off, after the current step: what a typo date does. */
export function renderGuardComparison(state: ViewState): string {
  if (!hasFutureDates(state.log)) return '';
  const line = (label: string, tolerance: number | null): string => {
    const s = { ...state, semantics: { ...state.semantics, guardToleranceUs: tolerance } };
    const sim = run(s);
    const step = Math.min(state.step, sim.batches.length);
    const b = sim.batches[step - 1];
    const dropped = sim.batches.slice(0, step).reduce((n, x) => n + x.dropped, 0);
    const counts = featuresAfter(s, sim, step)
      .map(([c, n]) => `${c}: ${n}`)
      .join(', ');
    return `<li>${label}: водяной знак ${b ? formatWatermark(b.nextWatermark) : formatWatermark(0)}, отброшено строк ${dropped}; order_count_${state.semantics.windowDays}d в T — ${counts || 'нет клиентов'}</li>`;
  };
  return `<ul class="pg-compare">${line('с защитой (дата больше чем на 1 день впереди коммита не учитывается)', GUARD_TOLERANCE_US)}${line('без защиты', null)}</ul>`;
}
