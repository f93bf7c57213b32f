// Reading the console as a person would, through Chromium: the tiles, the (windowed) VM list, the filter.
// Shared by the file-mode tests here and the API-mode test (test/kube/console.test.ts). Every wait polls a
// condition on the page, with a deadline; none sleeps for a fixed time.

import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { VireoProcess } from "../support/process.ts";
import type { Browser } from "../support/browser.ts";

/** Pixels per row of the VM list (console/vm-list.js). */
const ROW_HEIGHT = 30;

/** How long a condition on the page may take: the fleet at 50x needs seconds, a loaded machine more. */
export const PAGE_WAIT_MS = 60_000;

/** The console's origin, from the line `vireo run` logs when it starts. */
export async function consoleOrigin(vireo: VireoProcess): Promise<string> {
  return `http://${(await vireo.waitForLog(/console on http:\/\/([^/\s"]+)\//))[1]!}`;
}

/** Opens the console and waits until it shows the fleet and its stream is live. */
export async function openConsole(browser: Browser, origin: string): Promise<{ page: Page; headers: Record<string, string> }> {
  const page = await browser.newPage();
  const response = await page.goto(`${origin}/`);
  assert.ok(response, "the console answered");
  assert.equal(response.status(), 200);
  await page.locator('[data-role="connection"]', { hasText: "live" }).waitFor({ timeout: PAGE_WAIT_MS });
  return { page, headers: response.headers() };
}

/** Polls `check` until it returns true, failing after `ms` with `describe()`. */
export async function until(check: () => Promise<boolean>, describe: () => Promise<string> | string, ms = PAGE_WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not reached within ${ms} ms: ${await describe()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface ListedVm {
  phase: string;
  host: string;
}

/**
 * Every VM the list holds (under the current filter), read by scrolling it from top to bottom: the list
 * draws only the rows in view, so reading it whole also exercises the windowing.
 */
export async function listedVms(page: Page): Promise<Map<string, ListedVm>> {
  const list = page.locator(".vm-list");
  const seen = new Map<string, ListedVm>();
  await list.evaluate((el) => { el.scrollTop = 0; });
  for (;;) {
    // Drawn for where the list is scrolled to: its last row in view is in the page (the rows drawn for the
    // previous position reach past the first row in view, so that one would not tell).
    await until(() => list.evaluate((el, rowHeight) => {
      const count = Math.round(el.querySelector(".vm-list-space")!.getBoundingClientRect().height / rowHeight);
      const last = Math.min(count - 1, Math.floor((el.scrollTop + el.clientHeight - 1) / rowHeight));
      return count === 0 || [...el.querySelectorAll("[role=option]")].some((r) => r.getAttribute("style")?.includes(`top: ${last * rowHeight}px`));
    }, ROW_HEIGHT), () => "the list did not draw the rows scrolled to");
    const rows = await page.locator(".vm-list [role=option]").evaluateAll((options) => options.map((r) => [r.getAttribute("data-vm"), r.getAttribute("data-phase"), r.getAttribute("data-host")]));
    for (const [key, phase, host] of rows) seen.set(key!, { phase: phase!, host: host! });
    const moved = await list.evaluate((el) => {
      const before = el.scrollTop;
      el.scrollTop = before + el.clientHeight;
      return el.scrollTop !== before;
    });
    if (!moved) return seen;
  }
}

/** The host tiles on the page: name -> phase. */
export async function hostTiles(page: Page): Promise<Map<string, string>> {
  const tiles = await page.locator("article.tile").evaluateAll((articles) => articles.map((t) => [t.getAttribute("data-host")!, t.getAttribute("data-phase")!] as const));
  return new Map(tiles);
}
