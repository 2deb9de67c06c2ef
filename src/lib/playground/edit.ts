/**
 * Edits of the playground's event log that keep it a log Debezium could have written: a
 * changed row image is also the before image of the order's next change (by LSN), a
 * redelivered message (same order, LSN and op) changes with its original, and a new order
 * gets the next LSN and commits a minute after the newest commit.
 */
import type { ChangeEvent, OrderImage } from './engine.ts';
import { parseCents, formatCents } from './engine.ts';

export type EditableField = 'customer' | 'date' | 'status' | 'amount';

const MINUTE_US = 60_000_000;

function sameMessage(a: ChangeEvent, b: ChangeEvent): boolean {
  return a.order === b.order && a.lsn === b.lsn && a.op === b.op;
}

/** Validate one field's new value; returns the typed value or throws an Error with a Russian message. */
export function parseField(field: EditableField, text: string): number | string {
  const value = text.trim();
  if (field === 'customer') {
    if (!/^\d{1,9}$/.test(value) || Number(value) < 1) throw new Error('Клиент — целое число от 1');
    return Number(value);
  }
  if (field === 'amount') {
    const cents = parseCents(value.replace(',', '.'));
    if (cents < 0 || cents > 9_999_999_999) throw new Error('Сумма — от 0.00 до 99999999.99');
    return formatCents(cents);
  }
  if (field === 'status') {
    if (!/^[a-z_]{1,50}$/.test(value)) throw new Error('Статус — слово латиницей, например pending');
    return value;
  }
  const match = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})$/.exec(value);
  const ms = match ? Date.UTC(+match[1], +match[2] - 1, +match[3], +match[4], +match[5]) : NaN;
  if (!match || Number.isNaN(ms) || new Date(ms).getUTCDate() !== +match[3] || +match[1] < 1971) {
    throw new Error('Дата — ГГГГ-ММ-ДДTчч:мм (UTC), год не раньше 1971');
  }
  return ms * 1000;
}

/** The log with one field of the event's after image (and of its redeliveries) changed. */
export function editEvent(log: readonly ChangeEvent[], index: number, field: EditableField, value: number | string): ChangeEvent[] {
  const target = log[index];
  if (!target || !target.after) throw new Error('У удаления нет образа «после»: его поля не меняются');
  const after: OrderImage = { ...target.after, [field]: value };
  const edited = log.map((e) => (sameMessage(e, target) ? { ...e, after } : e));
  // The order's next change (lowest LSN above this one) carries this image as its before image.
  let next: number | null = null;
  for (const e of edited) {
    if (e.order === target.order && e.lsn > target.lsn && (e.op === 'u' || e.op === 'd') && (next === null || e.lsn < next)) next = e.lsn;
  }
  return edited.map((e) => (e.order === target.order && e.lsn === next && (e.op === 'u' || e.op === 'd') ? { ...e, before: after } : e));
}

/** The log without the event at `index`. */
export function removeEvent(log: readonly ChangeEvent[], index: number): ChangeEvent[] {
  return log.filter((_, i) => i !== index);
}

/** The log with a new order created at the end (next order id and LSN, committed a minute after the newest commit). */
export function addOrder(log: readonly ChangeEvent[], image: { customer: number; date?: number; amount?: string }): ChangeEvent[] {
  const order = log.reduce((m, e) => Math.max(m, e.order), 0) + 1;
  const lsn = log.reduce((m, e) => Math.max(m, e.lsn), 0) + 16;
  const newest = log.reduce((m, e) => Math.max(m, e.commit), 0);
  const commit = newest + MINUTE_US;
  const date = image.date ?? Math.floor(commit / MINUTE_US) * MINUTE_US;
  return [
    ...log,
    {
      op: 'c',
      order,
      lsn,
      commit,
      after: { customer: image.customer, date, status: 'pending', amount: image.amount ?? '10.00' },
      before: null,
    },
  ];
}
