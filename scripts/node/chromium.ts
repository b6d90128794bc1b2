/**
 * Headless Chromium for the browser tests and `npm run bench:browser`: Debian's `chromium` (apt-get install
 * chromium), or CHROMIUM_PATH. `--enable-unsafe-webgpu` gives WebGPU a software adapter (SwiftShader) on a
 * machine without a GPU.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
];

export function chromiumPath(): string | null {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  return null;
}

/** Why the browser tests cannot run here (one line), or null. In CI a missing Chromium is an error. */
export function skipReason(): string | null {
  if (chromiumPath()) return null;
  const line = 'browser tests skipped: no Chromium (apt-get install -y chromium, or set CHROMIUM_PATH)';
  if (process.env.CI) throw new Error(`${line}; CI must install it (.ci/run does)`);
  return line;
}

/** A fresh browser (playwright-core gives each launch its own temporary profile). */
export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath()!, args: CHROMIUM_FLAGS });
}

/** Collects the page's console lines and fails on page errors. */
export function watch(page: Page): { console: string[]; errors: string[] } {
  const out = { console: [] as string[], errors: [] as string[] };
  page.on('console', (m) => out.console.push(m.text()));
  page.on('pageerror', (e) => out.errors.push(e.message));
  return out;
}
