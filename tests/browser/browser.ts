// Shared browser setup: Debian Chromium through Playwright, and the built site served locally.
import { existsSync, globSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright';
import { chromiumArgs, findChromium } from '../../src/integrations/chromium.ts';
import { serveSite, type StaticSite } from './static-server.ts';

export const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const distDir = join(root, 'dist');

/** Launch Chromium or fail saying what to install. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath) {
    throw new Error(
      'Browser tests need Chromium: install it (Debian/Ubuntu: apt-get install chromium) or set CHROMIUM_PATH.',
    );
  }
  return chromium.launch({ executablePath, args: chromiumArgs });
}

/** Serve dist/ or fail saying how to build it. */
export async function serveBuiltSite(): Promise<StaticSite> {
  if (!existsSync(join(distDir, 'index.html'))) {
    throw new Error('dist/index.html is missing: run `npm run build` before the browser tests.');
  }
  return serveSite(distDir);
}

/** URL paths of every lesson page of the built site. */
export function lessonPaths(): string[] {
  return globSync('course/**/index.html', { cwd: distDir })
    .map((file) => '/' + file.replace(/index\.html$/, ''))
    .sort();
}
