/** Starts the page's server once for the browser tests (when Chromium is there to use it). */
import type { TestProject } from 'vitest/node';
import { startBrowserServer, type BrowserServer } from '../../scripts/node/browser-server.js';
import { chromiumPath } from '../../scripts/node/chromium.js';

declare module 'vitest' {
  export interface ProvidedContext {
    pageUrl: string;
  }
}

export default async function setup(project: TestProject) {
  if (!chromiumPath()) {
    project.provide('pageUrl', '');
    return;
  }
  const server: BrowserServer = await startBrowserServer((s) => process.stderr.write(`[browser tests] ${s}\n`));
  process.stderr.write(`[browser tests] page at ${server.url}\n`);
  project.provide('pageUrl', server.url);
  return () => server.close();
}
