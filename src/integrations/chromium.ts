/** The Chromium that renders diagrams at build time and runs the browser tests. */
import { existsSync } from 'node:fs';

/** Browser flags that work headless on this machine kind. */
export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Chromium candidates: $CHROMIUM_PATH first, then the usual Debian/Ubuntu locations. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((path): path is string => Boolean(path) && existsSync(path!));
}
