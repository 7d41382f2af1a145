/**
 * A real headless browser for the status page: Debian's chromium driven by playwright-core
 * (which downloads no browser of its own). hack/prerequisites.sh installs the package.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { HarnessError } from './processes.ts';

/** Where Debian puts it; CHROMIUM_PATH says otherwise. */
export function chromiumPath(): string {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p): p is string => !!p && existsSync(p));
  if (!found)
    throw new HarnessError(
      'chromium',
      'not installed: the status page is tested in a real browser (apt-get install chromium, or set CHROMIUM_PATH)',
    );
  return found;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    // Its sandbox needs user namespaces a container or root may not have; the page is our own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 60_000,
  });
}
