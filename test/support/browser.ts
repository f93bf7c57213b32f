// Debian's Chromium, driven by playwright-core, for tests of what Vireo shows in a browser (the console,
// the simulation report). Nothing downloads a browser: the set-up installs Debian's `chromium` when it is
// missing, as it does Prometheus. Each launch gets a fresh profile in a temp dir, no background networking,
// and a guard that lets requests reach only the origins a test allows: a page that fetches anything from
// elsewhere (a CDN, a font service) is caught, and the request never leaves the machine.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";
import { ensureDebianPackages } from "../tools/setup.ts";
import { REPO, tempDir } from "./process.ts";

export const CHROMIUM = "/usr/bin/chromium";

/** Where screenshots go (git-ignored): test-results/<suite>/ in the repository. */
export function artifactsDir(suite: string): string {
  const dir = join(REPO, "test-results", suite);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface BrowserOptions {
  /** Requests to URLs that start with none of these are aborted and recorded; file: and data: URLs are local. */
  allowedOrigins: string[];
  colorScheme?: "light" | "dark";
  viewport?: { width: number; height: number };
}

export interface Browser {
  context: BrowserContext;
  /** A new tab whose console errors and uncaught exceptions are recorded. */
  newPage(): Promise<Page>;
  /** Requests the guard stopped: each would have left the machine (or reached an origin not allowed). */
  blockedRequests(): string[];
  /** Console errors and uncaught page errors, of every page opened through newPage. */
  pageErrors(): string[];
  /** Saves a full-page screenshot as `<dir>/<name>.png` and returns its path. */
  screenshot(page: Page, dir: string, name: string): Promise<string>;
  close(): Promise<void>;
}

/** Launches headless Chromium (installing Debian's package first when it is missing). */
export async function launchBrowser(options: BrowserOptions): Promise<Browser> {
  await ensureDebianPackages({ chromium: "chromium" });
  const profile = tempDir("chromium-profile");
  const context = await chromium.launchPersistentContext(profile.path, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: options.viewport ?? { width: 1400, height: 1000 },
    colorScheme: options.colorScheme ?? "light",
    serviceWorkers: "block",
    acceptDownloads: false,
  });
  const blocked: string[] = [];
  const errors: string[] = [];
  const allowed = (url: string) => url.startsWith("data:") || url.startsWith("file:") || options.allowedOrigins.some((origin) => url === origin || url.startsWith(`${origin}/`));
  await context.route("**/*", async (route) => {
    const url = route.request().url();
    if (allowed(url)) return route.continue();
    blocked.push(url);
    return route.abort("blockedbyclient");
  });
  // What the route does not see is recorded too: any other request, and WebSockets.
  context.on("request", (request) => { if (!allowed(request.url()) && !blocked.includes(request.url())) blocked.push(request.url()); });
  const recordErrors = (page: Page) => {
    page.on("websocket", (ws) => { if (!allowed(ws.url())) blocked.push(ws.url()); });
    page.on("console", (message: ConsoleMessage) => { if (message.type() === "error") errors.push(`console: ${message.text()} (${message.location().url})`); });
    page.on("pageerror", (error: Error) => errors.push(`uncaught: ${error.message}`));
  };
  for (const page of context.pages()) recordErrors(page);
  return {
    context,
    newPage: async () => {
      const page = await context.newPage();
      recordErrors(page);
      return page;
    },
    blockedRequests: () => [...blocked],
    pageErrors: () => [...errors],
    screenshot: async (page, dir, name) => {
      const path = join(dir, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    close: async () => {
      await context.close();
      profile.remove();
    },
  };
}
