// The lesson's event-time playground in Debian Chromium: it hydrates only when scrolled into view,
// its presets step batch by batch showing the numbers Spark produced (the lab's fixtures), an edit
// of the log gives Spark's result for the edited log, and it is keyboard-operable, axe-clean in
// both themes and usable at 375 px. Prints the island's JavaScript size.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import AxeBuilder from '@axe-core/playwright';
import type { Browser, BrowserContext, Page } from 'playwright';
import { launchBrowser, root, serveBuiltSite } from './browser.ts';
import type { StaticSite } from './static-server.ts';
import { formatTime, formatWatermark } from '../../src/lib/playground/view.ts';
import type { FeatureRow } from '../../src/lib/playground/engine.ts';

const LESSON = '/course/module-5/07-feature-engineering/';
const FIXTURES = join(root, 'labs', 'feature-engineering', 'playground_fixtures');

interface FixtureBatch {
  watermark: number;
  dropped: number;
  features: FeatureRow[][];
}
interface Fixture {
  name: string;
  title: string;
  readAt: number[];
  batches: FixtureBatch[];
}

const fixture = (name: string): Fixture => JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8')) as Fixture;

let browser: Browser;
let site: StaticSite;

before(async () => {
  site = await serveBuiltSite();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
});

interface Opened {
  page: Page;
  context: BrowserContext;
  errors: string[];
  scripts: { url: string; body: Buffer }[];
}

async function open(options: { width?: number; colorScheme?: 'light' | 'dark' } = {}): Promise<Opened> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: 800 },
    colorScheme: options.colorScheme ?? 'light',
  });
  const page = await context.newPage();
  const opened: Opened = { page, context, errors: [], scripts: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') opened.errors.push(m.text());
  });
  page.on('pageerror', (e) => opened.errors.push(e.message));
  page.on('response', async (r) => {
    if (r.request().resourceType() === 'script') opened.scripts.push({ url: r.url(), body: await r.body() });
  });
  await page.goto(site.origin + LESSON, { waitUntil: 'load' });
  return opened;
}

async function hydrate(page: Page): Promise<void> {
  await page.locator('[data-playground]').scrollIntoViewIfNeeded();
  await page.waitForSelector('[data-playground][data-ready="true"]', { timeout: 15_000 });
}

/** The rows of a table of the playground as text cells (row header first). */
async function rows(page: Page, selector: string): Promise<string[][]> {
  return page.$$eval(`${selector} tbody tr`, (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => (c.textContent ?? '').trim())),
  );
}

async function choosePreset(page: Page, name: string): Promise<void> {
  await page.selectOption('#pg-preset', name);
  await page.click('#pg-reset');
  assert.match(await page.locator('#pg-status').innerText(), /^Обработано 0 из /);
}

/** After `step` batches, the screen shows Spark's watermark, drops and features at T for every batch so far. */
async function assertMatchesSpark(page: Page, f: Fixture, step: number, label: string): Promise<void> {
  const batchRows = await rows(page, '.pg-batches');
  assert.equal(batchRows.length, step, `${label}: rows of the batch table`);
  for (let b = 0; b < step; b++) {
    assert.equal(batchRows[b][2], formatWatermark(f.batches[b].watermark), `${label}: watermark of batch ${b}`);
    assert.equal(batchRows[b][4], String(f.batches[b].dropped), `${label}: rows dropped in batch ${b}`);
  }
  const shown = (await rows(page, '.pg-features')).filter((r) => r.length > 1).map((r) => r.slice(0, 4));
  const expected = f.batches[step - 1].features[0].map(([c, count, spend, , days]) => [
    String(c),
    String(count),
    spend,
    days === null ? '—' : String(days),
  ]);
  assert.deepEqual(shown, expected, `${label}: features at T after batch ${step - 1}`);
}

test('the playground hydrates only near the viewport, then every preset steps through Spark’s numbers', async () => {
  const o = await open();
  try {
    assert.equal(await o.page.locator('[data-playground][data-ready]').count(), 0, 'not hydrated before scrolling');
    assert.equal(o.scripts.filter((s) => s.url.includes('island')).length, 0, 'island not loaded before scrolling');
    await hydrate(o.page);
    const island = o.scripts.find((s) => s.url.includes('island'));
    assert.ok(island, 'the island script was loaded');
    const loader = o.scripts.filter((s) => !s.url.includes('island'));
    const all = o.scripts.reduce((n, s) => n + gzipSync(s.body).length, 0);
    console.log(
      `playground island: ${island.body.length} B raw, ${gzipSync(island.body).length} B gzip; ` +
        `loader ${loader.map((s) => `${s.body.length} B raw, ${gzipSync(s.body).length} B gzip`).join(', ')}; ` +
        `external JavaScript of the page ${all} B gzip`,
    );
    for (const name of ['tumbling_window', 'double_count', 'processing_time', 'typo_date', 'feature_stories']) {
      const f = fixture(name);
      await choosePreset(o.page, name);
      for (let step = 1; step <= f.batches.length; step++) {
        await o.page.click('#pg-step');
        await assertMatchesSpark(o.page, f, step, `${name} step ${step}`);
      }
      assert.ok(await o.page.locator('#pg-step').isDisabled(), `${name}: «Шаг» is disabled after the last batch`);
    }
    assert.deepEqual(o.errors, []);
  } finally {
    await o.context.close();
  }
});

test('the guard on and off, and editing the typo date, give Spark’s results; T moves with the slider', async () => {
  const o = await open();
  try {
    await hydrate(o.page);
    await choosePreset(o.page, 'typo_date');
    const typo = fixture('typo_date');
    const fixed = fixture('typo_date_fixed');
    for (let i = 0; i < typo.batches.length; i++) await o.page.click('#pg-step');
    await assertMatchesSpark(o.page, typo, typo.batches.length, 'typo');
    // The same log without the guard: the 2099 watermark and the dropped orders, as Spark ran it.
    assert.ok(await o.page.locator('#pg-guard').isChecked(), 'the preset runs with the lab’s guard');
    await o.page.locator('#pg-guard').uncheck();
    await assertMatchesSpark(o.page, fixture('typo_date_unguarded'), typo.batches.length, 'unguarded');
    await o.page.locator('#pg-guard').check();
    await assertMatchesSpark(o.page, typo, typo.batches.length, 'guarded again');
    const date = o.page.locator('[data-field="date"][data-index="2"]');
    assert.equal(await date.inputValue(), '2099-03-09T10:00');
    await date.fill('2026-03-09T10:00');
    await date.press('Tab');
    await o.page.waitForFunction(() => !document.querySelector('#pg-tables')?.textContent?.includes('2099'));
    await assertMatchesSpark(o.page, fixed, fixed.batches.length, 'after the edit');
    const focused = await o.page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.field ?? '');
    assert.equal(focused, 'status', 'focus stays in the event list after the re-render');

    await choosePreset(o.page, 'tumbling_window');
    for (let i = 0; i < 4; i++) await o.page.click('#pg-step');
    const t = o.page.locator('#pg-t');
    const day = Number(await t.inputValue());
    const later = fixture('tumbling_window').readAt[1];
    await t.fill(String(day + Math.round((later - fixture('tumbling_window').readAt[0]) / 86_400_000_000)));
    assert.equal(await o.page.locator('#pg-t-out').innerText(), `${formatTime(later)} UTC`);
    const shown = (await rows(o.page, '.pg-features')).map((r) => r.slice(0, 4));
    const expected = fixture('tumbling_window').batches[3].features[1].map(([c, n, s, , d]) => [String(c), String(n), s, d === null ? '—' : String(d)]);
    assert.deepEqual(shown, expected, 'features at the second read time');
    assert.deepEqual(o.errors, []);
  } finally {
    await o.context.close();
  }
});

test('the playground is keyboard-operable with a visible focus', async () => {
  const o = await open();
  try {
    await hydrate(o.page);
    await o.page.focus('#pg-preset');
    await o.page.keyboard.press('Tab');
    const focused = await o.page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { id: el.id, outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    // «Шаг» is disabled while every batch is processed, so Tab skips to «Пуск».
    assert.equal(focused.id, 'pg-play', 'Tab moves to the next enabled control');
    assert.notEqual(focused.outline, 'none');
    assert.ok(focused.width >= 2, `outline width ${focused.width}px`);
    await o.page.focus('#pg-reset');
    await o.page.keyboard.press('Enter');
    assert.match(await o.page.locator('#pg-status').innerText(), /^Обработано 0 из /);
    await o.page.focus('#pg-step');
    await o.page.keyboard.press('Space');
    assert.match(await o.page.locator('#pg-status').innerText(), /^Обработано 1 из /);
    // «Пуск» steps by itself to the last batch, then turns back into «Пуск».
    await o.page.focus('#pg-play');
    await o.page.keyboard.press('Enter');
    assert.equal(await o.page.locator('#pg-play').getAttribute('aria-pressed'), 'true');
    await o.page.waitForFunction(() => /^Обработано (\d+) из \1 /.test(document.querySelector('#pg-status')?.textContent ?? ''), undefined, { timeout: 20_000 });
    await o.page.waitForFunction(() => document.querySelector('#pg-play')?.getAttribute('aria-pressed') === 'false');
  } finally {
    await o.context.close();
  }
});

for (const colorScheme of ['light', 'dark'] as const) {
  test(`the hydrated playground has no axe violations (${colorScheme})`, async () => {
    const o = await open({ colorScheme });
    try {
      await hydrate(o.page);
      await choosePreset(o.page, 'typo_date');
      for (let i = 0; i < 4; i++) await o.page.click('#pg-step');
      const result = await new AxeBuilder({ page: o.page }).include('[data-playground]').analyze();
      const problems = result.violations.map((v) => `${v.id}: ${v.nodes.length} × ${v.help}`);
      assert.deepEqual(problems, []);
    } finally {
      await o.context.close();
    }
  });
}

test('at 375 px the playground fits the column (its tables scroll inside their regions)', async () => {
  const o = await open({ width: 375 });
  try {
    await hydrate(o.page);
    const overflow = await o.page.evaluate(() => {
      const box = document.querySelector('[data-playground]')!.getBoundingClientRect();
      return { page: document.documentElement.scrollWidth - window.innerWidth, right: box.right - window.innerWidth };
    });
    assert.ok(overflow.page <= 0, `page overflows by ${overflow.page}px`);
    assert.ok(overflow.right <= 0, `playground overflows by ${overflow.right}px`);
    await choosePreset(o.page, 'double_count');
    await o.page.click('#pg-step');
    assert.match(await o.page.locator('#pg-status').innerText(), /^Обработано 1 из /);
  } finally {
    await o.context.close();
  }
});
