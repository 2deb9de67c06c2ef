/**
 * Benchmark results of the lab, read from the committed Markdown files the benchmarks write
 * (`labs/feature-engineering/bench/results/*.md`), and the geometry of the charts drawn from
 * them at build time. Pure functions: the caller reads the files. The table shapes read here
 * are documented in labs/feature-engineering/BENCHMARKS.md («Results the lesson draws»).
 */

/** One freshness setting of the end-to-end benchmark: commit → feature visible, seconds. */
export interface FreshnessMode {
  /** The setting as the benchmark names it, e.g. `500 milliseconds` or `realTime 5 seconds`. */
  setting: string;
  p50: number;
  p95: number;
  p99: number;
}

/** One writer of the sink benchmark: seconds for the same rows. */
export interface SinkWriter {
  writer: string;
  seconds: number;
}

/**
 * The stages of e2e.md whose percentiles the freshness chart draws: the customer feature is
 * visible when its tile is written (micro-batches) or its per-order fact is (Real-Time Mode).
 */
export const FRESHNESS_STAGES: readonly string[] = ['commit → customer tile visible', 'commit → customer fact visible'];
const FRESHNESS_STAGE = FRESHNESS_STAGES.join('" or "');

/** The cells of a Markdown table row (`| a | b |` → [a, b]), or null for a non-row. */
function cells(line: string): string[] | null {
  const trimmed = line.trim();
  if (!trimmed.startsWith('|') || !trimmed.endsWith('|')) return null;
  return trimmed
    .slice(1, -1)
    .split('|')
    .map((c) => c.trim());
}

function unquote(cell: string): string {
  return cell.replace(/^`(.*)`$/, '$1').replace(/\*\*/g, '').trim();
}

function number(cell: string, where: string): number {
  const value = Number(cell.replace(/[,\s]/g, '').replace(/\s*s$/, ''));
  if (!Number.isFinite(value)) throw new Error(`${where}: "${cell}" is not a number`);
  return value;
}

/** The rows of the first table whose header is exactly `header` (without the `---` line). */
function table(markdown: string, header: readonly string[], file: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => {
    const c = cells(l);
    return c !== null && c.length === header.length && c.every((v, i) => v.toLowerCase() === header[i]);
  });
  if (start < 0) throw new Error(`${file}: no table with the header | ${header.join(' | ')} |`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    const c = cells(line);
    if (c === null) break;
    rows.push(c);
  }
  return rows;
}

/**
 * The freshness settings of `e2e.md`: the table `| trigger | stage | p50 | p95 | p99 |`, where a
 * row with a first cell starts a setting and its `commit → customer tile visible` (micro-batches)
 * or `commit → customer fact visible` (Real-Time Mode) row gives the
 * percentiles. Every setting the file holds is returned, in file order.
 */
export function parseFreshness(markdown: string, file = 'e2e.md'): FreshnessMode[] {
  const modes: FreshnessMode[] = [];
  let setting: string | null = null;
  for (const row of table(markdown, ['trigger', 'stage', 'p50', 'p95', 'p99'], file)) {
    if (row[0] !== '') setting = unquote(row[0]);
    if (!FRESHNESS_STAGES.includes(row[1])) continue;
    if (setting === null) throw new Error(`${file}: a "${FRESHNESS_STAGE}" row before any setting`);
    const where = `${file}, setting ${setting}`;
    const [p50, p95, p99] = row.slice(2, 5).map((c) => number(c, where));
    if (!(p50 <= p95 && p95 <= p99)) throw new Error(`${where}: percentiles out of order: ${p50}, ${p95}, ${p99}`);
    modes.push({ setting, p50, p95, p99 });
  }
  if (modes.length === 0) throw new Error(`${file}: no "${FRESHNESS_STAGE}" rows`);
  return modes;
}

/** The writers of the sink comparison in `lab.md`: the table `| writer | time | rows/s |`. */
export function parseSinkWriters(markdown: string, file = 'lab.md'): SinkWriter[] {
  const rows = table(markdown, ['writer', 'time', 'rows/s'], file);
  const writers = rows.map((row) => ({
    writer: unquote(row[0].replace(/\s*\(.*\)\s*$/, '')),
    seconds: number(row[1].replace(/\s*s$/, ''), `${file}, ${row[0]}`),
  }));
  if (writers.length < 2) throw new Error(`${file}: the sink table needs two writers`);
  return writers;
}

/** The Russian label of a benchmark setting: `500 milliseconds` → «микробатчи, триггер 500 мс». */
export function settingLabel(setting: string): string {
  const units: Record<string, string> = {
    milliseconds: 'мс', millisecond: 'мс', seconds: 'с', second: 'с', minutes: 'мин', minute: 'мин',
  };
  const realTime = /real[-_ ]?time/i.test(setting);
  const duration = /(\d+(?:\.\d+)?)\s*(milliseconds?|seconds?|minutes?)/.exec(setting);
  const amount = duration ? `${duration[1].replace('.', ',')} ${units[duration[2]]}` : null;
  if (realTime) return amount ? `Real-Time Mode, контрольная точка ${amount}` : 'Real-Time Mode';
  return amount ? `микробатчи, триггер ${amount}` : setting;
}

/** A number in Russian notation with a decimal comma: 3.05 → «3,05». */
export function ruNumber(value: number, digits = 2): string {
  return value.toFixed(digits).replace('.', ',');
}

/** The smallest «nice» axis end (1, 2, 2.5, 5 × 10^k) at or above `value`. */
export function niceCeiling(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

export interface ChartGeometry {
  width: number;
  height: number;
  /** x of the value 0 and of the axis end. */
  x0: number;
  x1: number;
  axisMax: number;
  ticks: Array<{ x: number; label: string }>;
  rows: Array<{ label: string; y: number; points: Array<{ name: string; value: number; x: number }> }>;
}

/**
 * Geometry of a horizontal dot chart: one row per series, its values as points on a shared
 * axis from 0 to a nice ceiling of the largest value (ticks at quarters of it).
 */
export function dotChart(
  series: ReadonlyArray<{ label: string; values: ReadonlyArray<{ name: string; value: number }> }>,
  options: { width?: number; labelWidth?: number; rowHeight?: number } = {},
): ChartGeometry {
  const width = options.width ?? 640;
  const labelWidth = options.labelWidth ?? 230;
  const rowHeight = options.rowHeight ?? 44;
  const top = 16;
  const x0 = labelWidth;
  const x1 = width - 24;
  const largest = Math.max(...series.flatMap((s) => s.values.map((v) => v.value)));
  const axisMax = niceCeiling(largest);
  const scale = (value: number) => x0 + ((x1 - x0) * value) / axisMax;
  const rows = series.map((s, i) => ({
    label: s.label,
    y: top + rowHeight * i + rowHeight / 2,
    points: s.values.map((v) => ({ name: v.name, value: v.value, x: scale(v.value) })),
  }));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => ({
    x: scale(axisMax * f),
    label: ruNumber(axisMax * f, axisMax * f === Math.round(axisMax * f) ? 0 : 2),
  }));
  return { width, height: top + rowHeight * series.length + 34, x0, x1, axisMax, ticks, rows };
}
