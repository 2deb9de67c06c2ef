// Browser tests of the built site in Debian Chromium: every page loads cleanly, has one <h1>,
// inline SVG diagrams, no horizontal overflow at 375 px, no serious axe violation, working links,
// and the lesson page stays within its JavaScript and layout-shift budget.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import AxeBuilder from '@axe-core/playwright';
import type { Browser, BrowserContext, Page } from 'playwright';
import { launchBrowser, lessonPaths, serveBuiltSite } from './browser.ts';
import type { StaticSite } from './static-server.ts';

const JS_BUDGET_GZIP_BYTES = 40 * 1024;
const CLS_BUDGET = 0.02;

let browser: Browser;
let site: StaticSite;
const lessons = lessonPaths();
const pages = ['/', ...lessons];

before(async () => {
  site = await serveBuiltSite();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
});

interface Visit {
  page: Page;
  context: BrowserContext;
  consoleErrors: string[];
  failedRequests: string[];
  foreignRequests: string[];
  scriptBodies: Buffer[];
}

/** Open a page, recording console errors, failed and foreign requests, and script responses. */
async function visit(
  path: string,
  options: { width?: number; colorScheme?: 'light' | 'dark'; init?: () => void } = {},
): Promise<Visit> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: 800 },
    colorScheme: options.colorScheme ?? 'light',
  });
  if (options.init) await context.addInitScript(options.init);
  const page = await context.newPage();
  const result: Visit = { page, context, consoleErrors: [], failedRequests: [], foreignRequests: [], scriptBodies: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') result.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => result.consoleErrors.push(error.message));
  page.on('requestfailed', (request) => result.failedRequests.push(`${request.url()} ${request.failure()?.errorText}`));
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith('data:') && !url.startsWith(site.origin)) result.foreignRequests.push(url);
  });
  page.on('response', async (response) => {
    if (response.status() >= 400) result.failedRequests.push(`${response.url()} HTTP ${response.status()}`);
    if (response.request().resourceType() === 'script') result.scriptBodies.push(await response.body());
  });
  await page.goto(site.origin + path, { waitUntil: 'load' });
  return result;
}

/** Runs in the page before any of its scripts: sums layout shifts not caused by input into window.__cls. */
function observeLayoutShifts(): void {
  const w = window as unknown as { __cls: number };
  w.__cls = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries() as (PerformanceEntry & { value: number; hadRecentInput: boolean })[]) {
      if (!entry.hadRecentInput) w.__cls += entry.value;
    }
  }).observe({ type: 'layout-shift', buffered: true });
}

test('the built site has lesson pages', () => {
  assert.ok(lessons.includes('/course/module-5/07-feature-engineering/'), `lesson pages: ${lessons.join(', ')}`);
});

for (const path of pages) {
  test(`${path} loads with no console error, failed or foreign request, and exactly one <h1>`, async () => {
    const v = await visit(path);
    try {
      await v.page.waitForLoadState('networkidle');
      assert.deepEqual(v.consoleErrors, []);
      assert.deepEqual(v.failedRequests, []);
      assert.deepEqual(v.foreignRequests, []);
      assert.equal(await v.page.locator('h1').count(), 1);
      assert.equal(await v.page.getAttribute('html', 'lang'), 'ru');
    } finally {
      await v.context.close();
    }
  });

  test(`${path} has no horizontal overflow at 375 px and its menu opens`, async () => {
    const v = await visit(path, { width: 375 });
    try {
      const overflow = await v.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the 375px viewport`);
      const nav = v.page.locator('#course-nav');
      assert.equal(await nav.isVisible(), false, 'the course outline is collapsed behind the menu on a phone');
      await v.page.getByRole('button', { name: 'Меню' }).click();
      assert.equal(await nav.isVisible(), true, 'the menu button shows the course outline');
      assert.equal(await v.page.getAttribute('.menu-button', 'aria-expanded'), 'true');
    } finally {
      await v.context.close();
    }
  });

  for (const colorScheme of ['light', 'dark'] as const) {
    test(`${path} has no serious or critical axe violation (${colorScheme} theme)`, async () => {
      const v = await visit(path, { colorScheme });
      try {
        const results = await new AxeBuilder({ page: v.page }).analyze();
        const serious = results.violations
          .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
          .map((violation) => `${violation.id} (${violation.impact}): ${violation.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
        assert.deepEqual(serious, []);
      } finally {
        await v.context.close();
      }
    });
  }

  test(`${path}: every link on the page resolves`, async () => {
    const v = await visit(path);
    try {
      const hrefs = await v.page.$$eval('a[href]', (links) => links.map((a) => (a as HTMLAnchorElement).href));
      const broken: string[] = [];
      for (const href of new Set(hrefs)) {
        const url = new URL(href);
        assert.equal(url.origin, site.origin, `link to another site: ${href}`);
        if (url.hash && url.pathname === new URL(v.page.url()).pathname) {
          const id = decodeURIComponent(url.hash.slice(1));
          if ((await v.page.locator(`[id="${id}"]`).count()) !== 1) broken.push(`${href} (no element with id ${id})`);
          continue;
        }
        const response = await v.context.request.get(href);
        if (response.status() !== 200) broken.push(`${href} HTTP ${response.status()}`);
      }
      assert.deepEqual(broken, []);
    } finally {
      await v.context.close();
    }
  });
}

for (const path of lessons) {
  test(`${path}: diagrams are inline <svg> with a size, and no Mermaid code or script remains`, async () => {
    const v = await visit(path, { width: 375 });
    try {
      const diagrams = v.page.locator('svg[data-diagram]');
      const count = await diagrams.count();
      assert.ok(count >= 1, 'the lesson has at least one diagram');
      for (let i = 0; i < count; i += 1) {
        const box = await diagrams.nth(i).boundingBox();
        assert.ok(box && box.width > 0 && box.height > 0, `diagram ${i + 1} has size ${JSON.stringify(box)}`);
        const natural = await diagrams.nth(i).evaluate((svg) => (svg as SVGSVGElement).viewBox.baseVal.width);
        assert.ok(box.width >= natural * 0.6 - 1, `diagram ${i + 1} is scaled to ${box.width}px of ${natural}px: unreadable`);
        const frame = await diagrams.nth(i).evaluate((svg) => svg.parentElement!.getBoundingClientRect().right);
        assert.ok(frame <= 375, `diagram ${i + 1}'s frame ends at ${frame}px on a 375px phone`);
      }
      assert.equal(await v.page.locator('code.language-mermaid, pre.mermaid').count(), 0);
      const mermaidScripts = await v.page.$$eval('script', (scripts) =>
        scripts.filter((s) => /mermaid/i.test(s.src + s.textContent)).length,
      );
      assert.equal(mermaidScripts, 0);
    } finally {
      await v.context.close();
    }
  });

  test(`${path}: meta, prerequisites, table of contents and previous/next are shown`, async () => {
    const v = await visit(path);
    try {
      const meta = await v.page.locator('.lesson-meta').innerText();
      assert.match(meta, /Продвинутый/);
      assert.match(meta, /50 минут/);
      assert.match(meta, /ETL\/ELT паттерны с CDC данными/);
      const tocLinks = await v.page.$$eval('.toc a', (links) => links.map((a) => a.getAttribute('href')));
      const headingIds = await v.page.$$eval('.lesson-body h2[id], .lesson-body h3[id]', (hs) => hs.map((h) => `#${h.id}`));
      assert.deepEqual(tocLinks, headingIds);
      assert.ok(tocLinks.length > 0);
      // The contents nest like the headings: each h3 is listed inside the <li> of the h2 before it.
      const tocTree = await v.page.$$eval('.toc > ol > li', (items) =>
        items.map((li) => ({
          href: li.querySelector(':scope > a')?.getAttribute('href'),
          children: [...li.querySelectorAll(':scope > ol > li > a')].map((a) => a.getAttribute('href')),
        })),
      );
      const headingTree = await v.page.$$eval('.lesson-body h2[id], .lesson-body h3[id]', (hs) => {
        const tree: { href: string; children: string[] }[] = [];
        for (const h of hs) {
          if (h.tagName === 'H3' && tree.length > 0) tree[tree.length - 1].children.push(`#${h.id}`);
          else tree.push({ href: `#${h.id}`, children: [] });
        }
        return tree;
      });
      assert.deepEqual(tocTree, headingTree);
      assert.match(await v.page.locator('.prev-next').innerText(), /ETL\/ELT паттерны с CDC данными/);
      assert.equal(await v.page.locator('.sidebar [aria-current="page"]').count(), 1);
    } finally {
      await v.context.close();
    }
  });

  test(`${path}: «Отметить как пройденный» is kept across reloads`, async () => {
    const v = await visit(path);
    try {
      const button = v.page.locator('.progress-button');
      assert.equal(await button.getAttribute('aria-pressed'), 'false');
      await button.click();
      await v.page.reload();
      assert.equal(await v.page.locator('.progress-button').getAttribute('aria-pressed'), 'true');
      assert.equal(await v.page.locator('.sidebar .done-mark.done').count(), 1);
    } finally {
      await v.context.close();
    }
  });

  test(`${path}: every code block has a copy button that copies its code`, async () => {
    const v = await visit(path);
    try {
      await v.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: site.origin });
      const blocks = v.page.locator('.code-block');
      const count = await blocks.count();
      assert.ok(count >= 1);
      assert.equal(await v.page.locator('.code-block .copy-button').count(), count);
      await blocks.first().locator('.copy-button').click();
      await v.page.waitForFunction(() => document.querySelector('.copy-button')?.textContent === 'Скопировано');
      const copied = await v.page.evaluate(() => navigator.clipboard.readText());
      assert.equal(copied.trim(), (await blocks.first().locator('pre').innerText()).trim());
    } finally {
      await v.context.close();
    }
  });

  test(`${path}: page weight — at most 40 KB of gzip JavaScript, CLS ≤ 0.02 while scrolling`, async () => {
    const v = await visit(path, { init: observeLayoutShifts });
    try {
      const height = await v.page.evaluate(() => document.documentElement.scrollHeight);
      for (let y = 0; y <= height; y += 600) {
        await v.page.evaluate((top) => window.scrollTo(0, top), y);
        await v.page.waitForTimeout(50);
      }
      await v.page.waitForTimeout(300);
      const cls = await v.page.evaluate(() => (window as unknown as { __cls: number }).__cls);
      const inline = await v.page.$$eval('script:not([src]):not([type="application/json"])', (scripts) => scripts.map((s) => s.textContent ?? ''));
      const inlineGzip = inline.reduce((sum, text) => sum + gzipSync(text).length, 0);
      const externalGzip = v.scriptBodies.reduce((sum, body) => sum + gzipSync(body).length, 0);
      const total = inlineGzip + externalGzip;
      console.log(
        `page weight ${path}: JavaScript ${total} bytes gzip (${inline.length} inline scripts ${inlineGzip} B, ` +
          `${v.scriptBodies.length} external scripts ${externalGzip} B); CLS while scrolling ${cls.toFixed(4)}`,
      );
      assert.ok(total <= JS_BUDGET_GZIP_BYTES, `JavaScript ${total} B gzip exceeds ${JS_BUDGET_GZIP_BYTES} B`);
      assert.ok(cls <= CLS_BUDGET, `cumulative layout shift ${cls} exceeds ${CLS_BUDGET}`);
      assert.deepEqual(v.foreignRequests, []);
    } finally {
      await v.context.close();
    }
  });
}

test('the feature engineering lesson lists its sections, with the subsections inside sections 3 and 6', async () => {
  const v = await visit('/course/module-5/07-feature-engineering/');
  try {
    const sections = await v.page.$$eval('.toc > ol > li > a', (links) => links.map((a) => a.textContent?.trim()));
    assert.equal(sections[2], 'Паттерн: Customer Behavior Features');
    assert.equal(sections[3], 'Паттерн: Product Metrics Features');
    assert.equal(sections.length, 11);
    const subsections = (index: number) =>
      v.page
        .locator('.toc > ol > li')
        .nth(index)
        .evaluate((li) => [...li.querySelectorAll(':scope > ol > li > a')].map((a) => a.textContent?.trim()));
    assert.deepEqual(await subsections(2), [
      'Что нужно от источника',
      'Разбор конверта Debezium',
      'Окно: дневные плитки вместо «30-дневного» tumbling',
      'Ядро: последняя версия заказа и строки-отмены',
      'Время события',
    ]);
    assert.deepEqual(await subsections(5), ['Обучающая выборка: значения «как было известно тогда»']);
    assert.equal(await v.page.locator('.toc ol ol').count(), 2, 'only sections 3 and 6 have subsections');
    // Numbering per level: sections 1–11, and the subsections as their own lists 1–n.
    const styles = await v.page.$$eval('.toc ol', (lists) =>
      lists.map((ol) => [getComputedStyle(ol).listStyleType, ol.getAttribute('start'), ol.children.length]),
    );
    assert.deepEqual(styles, [
      ['decimal', null, 11],
      ['decimal', null, 5],
      ['decimal', null, 1],
    ]);
  } finally {
    await v.context.close();
  }
});

test('«Для продакшна» blocks are closed by default and open from the keyboard', async () => {
  const v = await visit('/course/module-5/07-feature-engineering/');
  try {
    const blocks = v.page.locator('details.production');
    const count = await blocks.count();
    assert.ok(count >= 5, `${count} blocks`);
    assert.equal(await v.page.locator('details.production[open]').count(), 0, 'all closed on load');
    const first = blocks.first();
    const code = first.locator('.code-block').first();
    assert.equal(await code.isVisible(), false, 'the depth is hidden until asked for');
    const summary = first.locator('summary');
    assert.match(await summary.innerText(), /^Для продакшна: /);
    await summary.focus();
    const outline = await summary.evaluate((el) => getComputedStyle(el).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused summary shows an outline');
    await v.page.keyboard.press('Enter');
    assert.equal(await first.getAttribute('open'), '');
    assert.equal(await code.isVisible(), true);
    await v.page.keyboard.press('Enter');
    assert.equal(await first.getAttribute('open'), null, 'Enter closes it again');
  } finally {
    await v.context.close();
  }
});

test('benchmark charts are inline SVG built from the results files, with the numbers in a table', async () => {
  const v = await visit('/course/module-5/07-feature-engineering/', { width: 375 });
  try {
    const charts = v.page.locator('figure.bench-chart');
    assert.equal(await charts.count(), 2);
    for (let i = 0; i < 2; i += 1) {
      const chart = charts.nth(i);
      const box = await chart.locator('svg').boundingBox();
      assert.ok(box && box.width > 0 && box.width <= 375, `chart ${i + 1} is ${JSON.stringify(box)}`);
      const rows = await chart.locator('table tbody tr').count();
      assert.ok(rows >= 2, `chart ${i + 1} has ${rows} table rows`);
      assert.equal(await chart.locator('svg circle').count() > 0, true);
    }
    const freshness = await charts.filter({ hasText: 'От коммита' }).locator('table').innerText();
    assert.match(freshness, /микробатчи, триггер 500 мс/);
    assert.equal(await v.page.locator('figure.bench-chart script').count(), 0);
  } finally {
    await v.context.close();
  }
});

test('a table of contents link shows a visible focus outline', async () => {
  const v = await visit('/course/module-5/07-feature-engineering/');
  try {
    const link = v.page.locator('.toc ol ol a').first();
    await link.focus();
    await v.page.keyboard.press('Shift+Tab');
    await v.page.keyboard.press('Tab');
    const focus = await v.page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { text: el.textContent, outline: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    assert.equal(focus.text, 'Что нужно от источника');
    assert.notEqual(focus.outline, 'none');
    assert.ok(focus.width >= 2, `outline width ${focus.width}px`);
  } finally {
    await v.context.close();
  }
});

test('keyboard focus is visible: Tab reaches the skip link and the next control, both with an outline', async () => {
  const v = await visit(lessons[0]);
  try {
    await v.page.keyboard.press('Tab');
    const focused = await v.page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      const box = el.getBoundingClientRect();
      return { text: el.textContent, outline: style.outlineStyle, width: parseFloat(style.outlineWidth), top: box.top };
    });
    assert.equal(focused.text, 'К содержимому');
    assert.notEqual(focused.outline, 'none');
    assert.ok(focused.width >= 2, `outline width ${focused.width}px`);
    assert.ok(focused.top >= 0, 'the focused skip link is on screen');
    await v.page.keyboard.press('Tab');
    const second = await v.page.evaluate(() => getComputedStyle(document.activeElement as HTMLElement).outlineStyle);
    assert.notEqual(second, 'none', 'the next focused control shows an outline too');
  } finally {
    await v.context.close();
  }
});

test('the theme button switches light and dark, and the choice survives a reload', async () => {
  const v = await visit(lessons[0], { colorScheme: 'light' });
  try {
    const background = () => v.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(await background(), 'rgb(255, 255, 255)');
    await v.page.getByRole('button', { name: 'Сменить тему' }).click();
    assert.equal(await v.page.getAttribute('html', 'data-theme'), 'dark');
    assert.equal(await background(), 'rgb(13, 17, 23)');
    await v.page.reload();
    assert.equal(await background(), 'rgb(13, 17, 23)');
    const codeColor = await v.page.evaluate(() => getComputedStyle(document.querySelector('.astro-code')!).backgroundColor);
    assert.notEqual(codeColor, 'rgb(255, 255, 255)', 'code blocks follow the dark theme');
  } finally {
    await v.context.close();
  }
});
