// The console in a real browser (Debian's Chromium, headless), against `vireo run` in file mode on a copy
// of the example fleet: it loads with no console error and no request leaving the machine, shows the
// fleet, follows a host crash live without a reload, filters, opens a VM's detail, and shows markup in an
// object's fields as text. Screenshots go to test-results/console/ (each test prints its paths).
//
// The tests share one `vireo run` and one browser, and run in file order: the crash comes after the first
// look at the fleet, and the later tests read the fleet as the crash left it.

import { test, before, after } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import type { Page } from "playwright-core";
import type { VirtualMachine } from "../../controller/api/types.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { readSimEndpoint } from "../../controller/cli/sim-endpoint.ts";
import { REPO, VireoProcess, WAIT_MS, tempDir, waitForState } from "../support/process.ts";
import { artifactsDir, launchBrowser, type Browser } from "../support/browser.ts";
import { PAGE_WAIT_MS, consoleOrigin, hostTiles, listedVms, openConsole, until } from "./page.ts";

const SCREENSHOTS = artifactsDir("console");
const dir = tempDir("console");
const manifests = join(dir.path, "manifests");
const state = join(dir.path, "state");
let vireo: VireoProcess;
let browser: Browser;
let origin: string;
let page: Page;

/** The objects the example manifests declare (labs make more VMs of their own). */
interface Declared {
  hosts: string[];
  vms: { key: string; labels: Record<string, string>; runStrategy: string }[];
}

function declared(root: string): Declared {
  const files = (d: string): string[] => readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? files(join(d, f)) : /\.ya?ml$/.test(f) ? [join(d, f)] : []));
  const docs = files(root).flatMap((f) => loadAll(readFileSync(f, "utf8")) as ({ kind?: string; metadata?: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: { runStrategy?: string } } | null)[]);
  return {
    hosts: docs.filter((d) => d?.kind === "Host").map((d) => d!.metadata!.name).sort(),
    vms: docs.filter((d) => d?.kind === "VirtualMachine").map((d) => ({
      key: `${d!.metadata!.namespace ?? "default"}/${d!.metadata!.name}`,
      labels: d!.metadata!.labels ?? {},
      runStrategy: d!.spec?.runStrategy ?? "Always",
    })),
  };
}

function vms(s: StateSnapshot): VirtualMachine[] {
  return s.objects.map((o) => o.object).filter((o): o is VirtualMachine => o.kind === "VirtualMachine");
}
const keyOfVm = (vm: VirtualMachine) => `${vm.metadata.namespace ?? "default"}/${vm.metadata.name}`;

async function shoot(t: TestContext, name: string): Promise<void> {
  t.diagnostic(`screenshot: ${await browser.screenshot(page, SCREENSHOTS, name)}`);
}

/** No console error, no uncaught exception, no request to anywhere but the console, so far. */
function assertClean(): void {
  assert.deepEqual(browser.pageErrors(), [], "the page logged errors");
  assert.deepEqual(browser.blockedRequests(), [], "the page asked for something not on the console's origin");
}

const fleet = { declared: undefined as unknown as Declared, up: undefined as unknown as StateSnapshot };

before(async () => {
  mkdirSync(manifests, { recursive: true });
  cpSync(join(REPO, "manifests", "examples"), manifests, { recursive: true });
  fleet.declared = declared(manifests);
  vireo = new VireoProcess(["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", "50"]);
  origin = await consoleOrigin(vireo);
  const running = fleet.declared.vms.filter((v) => v.runStrategy === "Always").map((v) => v.key);
  fleet.up = await waitForState(state, (s) => running.every((k) => vms(s).find((vm) => keyOfVm(vm) === k)?.status?.phase === "Running"), WAIT_MS, () => vireo.logs());
  browser = await launchBrowser({ allowedOrigins: [origin] });
});

after(async () => {
  await browser?.close();
  await vireo?.stop();
  dir.remove();
});

test("the console loads with no console error and no request leaving the machine, locked down by its CSP, and shows the example fleet's hosts and VMs", async (t) => {
  const opened = await openConsole(browser, origin);
  page = opened.page;
  assert.match(opened.headers["content-security-policy"] ?? "", /script-src 'self'/);
  assert.equal(opened.headers["x-content-type-options"], "nosniff");

  // Every declared host has a tile, Ready.
  await until(async () => {
    const tiles = await hostTiles(page);
    return fleet.declared.hosts.every((h) => tiles.get(h) === "Ready");
  }, async () => `tiles: ${JSON.stringify([...await hostTiles(page)])}`);
  assert.deepEqual([...(await hostTiles(page)).keys()].sort(), fleet.declared.hosts);

  // Every declared VM is listed (with the VMs the labs made), where the state directory says it runs.
  const listed = await listedVms(page);
  for (const vm of fleet.declared.vms) assert.ok(listed.has(vm.key), `${vm.key} is listed`);
  const total = Number((await page.locator('[data-role="vm-count"]').textContent())!.match(/^(\d+) VMs$/)![1]);
  assert.equal(listed.size, total, "the list holds as many VMs as its count says");
  assert.ok(await page.locator(".vm-list [role=option]").count() < total, "the list draws only the rows in view");
  // Each running VM is listed on the host the state directory names, and its host's tile shows it (a tile
  // names its first 8 VMs, then "+N more").
  await until(async () => {
    const listedNow = await listedVms(page);
    return vms(await waitForState(state, () => true)).filter((vm) => vm.status?.phase === "Running").every((vm) => {
      const row = listedNow.get(keyOfVm(vm));
      return row?.phase === "Running" && row.host === vm.status!.host;
    });
  }, async () => `listed: ${JSON.stringify([...await listedVms(page)])}`);
  const onHost = new Map<string, string[]>();
  for (const [key, row] of await listedVms(page)) if (row.host) onHost.set(row.host, [...(onHost.get(row.host) ?? []), key]);
  for (const host of fleet.declared.hosts) {
    const chips = await page.locator(`article.tile[data-host="${host}"] [data-vm]`).evaluateAll((els) => els.map((e) => e.getAttribute("data-vm") ?? ""));
    const running = onHost.get(host) ?? [];
    assert.equal(chips.length, Math.min(8, running.length), `${host}'s tile names its VMs`);
    for (const chip of chips) assert.ok(running.includes(chip), `${chip} is on ${host}`);
  }
  // The cluster's failover capacity, in words.
  await page.locator('section.cluster[data-cluster="prod"] [data-fact="failover"]', { hasText: /tolerates \d+ host failures?/ }).waitFor({ timeout: PAGE_WAIT_MS });

  await shoot(t, "fleet-light");
  const light = await page.evaluate("getComputedStyle(document.body).backgroundColor");
  await page.emulateMedia({ colorScheme: "dark" });
  const dark = await page.evaluate("getComputedStyle(document.body).backgroundColor");
  assert.notEqual(dark, light, "the page follows the system's dark preference");
  await shoot(t, "fleet-dark");
  await page.emulateMedia({ colorScheme: "light" });

  // The fault-tolerant ledger's detail tells where its secondary runs, and how far behind.
  await page.locator('article.tile [data-vm="shop/ledger"]').click();
  const ft = page.locator('[data-inflight="fault-tolerance"]', { hasText: "Protected" });
  await ft.waitFor({ timeout: PAGE_WAIT_MS });
  assert.match((await ft.textContent())!, /^Fault tolerance: Protected, secondary on [a-z0-9-]+, \d+ ms behind/);
  assertClean();
});

test("after a host crashes, the page shows it failed and its VMs running elsewhere, without a reload", async (t) => {
  // The host of the shop's first database, and the VMs it runs that must come back.
  const victim = vms(fleet.up).find((vm) => keyOfVm(vm) === "shop/db-1")!.status!.host!;
  const evicted = vms(fleet.up).filter((vm) => vm.status?.host === victim && vm.spec.runStrategy === "Always").map(keyOfVm);
  assert.ok(evicted.length >= 1, `${victim} runs a VM`);
  await page.evaluate("window.sameDocument = true");

  writeFileSync(join(manifests, "crash.yaml"), `apiVersion: vireo.dev/v1alpha1\nkind: Fault\nmetadata: {name: crash}\nspec: {type: HostCrash, target: {host: ${victim}}}\n`);
  const tile = page.locator(`article.tile[data-host="${victim}"]`);
  await page.locator(`article.tile[data-host="${victim}"][data-phase="Failed"]`).waitFor({ timeout: PAGE_WAIT_MS });
  assert.equal(await tile.locator('[data-role="phase"]').textContent(), "Failed", "the phase is written, not only coloured");
  for (const key of evicted) {
    // Running (tone-ok) in another host's tile, and gone from the failed host's.
    await page.locator(`article.tile:not([data-host="${victim}"]) [data-vm="${key}"].tone-ok`).waitFor({ timeout: PAGE_WAIT_MS });
  }
  await until(async () => (await tile.locator("[data-vm]").count()) === 0, () => `${victim}'s tile still lists VMs`);
  await page.locator('.events li[data-reason="FailoverComplete"]').first().waitFor({ timeout: PAGE_WAIT_MS });
  assert.equal(await page.evaluate("window.sameDocument"), true, "the page was not reloaded");

  // The detail of a VM that moved tells where from, and how many attempts it took.
  await page.locator(`article.tile [data-vm="${evicted[0]}"]`).click();
  await page.locator('[data-inflight="failover"]', { hasText: `from ${victim} to ` }).waitFor({ timeout: PAGE_WAIT_MS });
  assert.match((await page.locator('[data-inflight="failover"]').textContent())!, new RegExp(`^Failover from ${victim} to [a-z0-9-]+: HostFailure, \\d+ attempts?, failed \\d+[smhd] ago`));
  await shoot(t, "host-failed");
  assertClean();
});

test("the VM list filters by namespace, label, name and host, moves with the keyboard, and the detail pane shows conditions and events", async (t) => {
  const filter = page.locator("#vm-filter");
  const rows = async () => [...(await listedVms(page)).keys()].sort();

  await filter.fill("ns:shop label:tier=db");
  const dbs = fleet.declared.vms.filter((v) => v.key.startsWith("shop/") && v.labels["tier"] === "db").map((v) => v.key).sort();
  assert.ok(dbs.length >= 2);
  await until(async () => JSON.stringify(await rows()) === JSON.stringify(dbs), async () => `listed ${JSON.stringify(await rows())}, expected ${JSON.stringify(dbs)}`);
  assert.match((await page.locator('[data-role="vm-count"]').textContent())!, new RegExp(`^${dbs.length} of \\d+ VMs$`));

  await filter.fill("ci/builder");
  const builders = fleet.declared.vms.filter((v) => v.key.startsWith("ci/builder")).map((v) => v.key).sort();
  await until(async () => JSON.stringify(await rows()) === JSON.stringify(builders), async () => `listed ${JSON.stringify(await rows())}`);

  await filter.fill("phase:Stopped");
  await until(async () => {
    const listed = await listedVms(page);
    return listed.has("shop/reports") && [...listed.values()].every((v) => v.phase === "Stopped");
  }, async () => `listed ${JSON.stringify([...await listedVms(page)])}`);

  // A host's name in its tile lists that host's VMs.
  const host = "esx-02";
  await page.locator(`article.tile[data-host="${host}"] .host-name`).click();
  assert.equal(await filter.inputValue(), `host:${host}`);
  await until(async () => {
    const listed = await listedVms(page);
    const now = await waitForState(state, () => true);
    const expected = vms(now).filter((vm) => vm.status?.host === host).map(keyOfVm).sort();
    return listed.size > 0 && JSON.stringify([...listed.keys()].sort()) === JSON.stringify(expected);
  }, async () => `listed ${JSON.stringify([...await listedVms(page)])}`);

  // The keyboard: End and Home select the last and first VM, and the detail follows.
  await filter.fill("ns:shop");
  await until(async () => (await rows()).length > 3, () => "shop's VMs are not listed");
  const shop = await rows();
  await page.locator(".vm-list").focus();
  await page.keyboard.press("End");
  await page.locator("#detail-title", { hasText: shop.at(-1)! }).waitFor({ timeout: PAGE_WAIT_MS });
  await page.keyboard.press("Home");
  await page.locator("#detail-title", { hasText: shop[0]! }).waitFor({ timeout: PAGE_WAIT_MS });
  await page.keyboard.press("ArrowDown");
  await page.locator("#detail-title", { hasText: shop[1]! }).waitFor({ timeout: PAGE_WAIT_MS });
  assert.equal(await page.locator(".vm-list").getAttribute("aria-activedescendant"), await page.locator(".vm-row.selected").getAttribute("id"));

  // The detail of shop/db-1: labels, conditions, recent events.
  await page.locator('.vm-list [data-vm="shop/db-1"]').click();
  await page.locator("#detail-title", { hasText: "shop/db-1" }).waitFor({ timeout: PAGE_WAIT_MS });
  await page.locator('[data-role="detail-labels"] li', { hasText: "tier=db" }).waitFor({ timeout: PAGE_WAIT_MS });
  await page.locator('.detail [data-condition="Ready"]').waitFor({ timeout: PAGE_WAIT_MS });
  await page.locator(".detail .events li", { hasText: "Scheduled" }).first().waitFor({ timeout: PAGE_WAIT_MS });
  await shoot(t, "filter-and-detail");
  await page.keyboard.press("Escape");
  await page.locator("#detail-title").waitFor({ state: "detached", timeout: PAGE_WAIT_MS });

  // Events filtered by object.
  await page.locator("#event-filter").fill("shop/db-1");
  await until(async () => {
    const objects = await page.locator(".events-panel .events li").evaluateAll((items) => items.map((i) => i.getAttribute("data-object") ?? ""));
    return objects.length > 0 && objects.every((o) => o.includes("shop/db-1"));
  }, () => "the events are not filtered to shop/db-1");
  await page.locator("#event-filter").fill("");
  assertClean();
});

test("a VM whose owner holds markup shows it as text and runs nothing; no secret reaches the page", async (t) => {
  // Label values cannot hold markup (Kubernetes' label syntax, which file mode checks too); a VM's owner can.
  const owner = `<script>window.injected = 1</script><img src=x onerror="window.injected = 2"> & "quotes"`;
  writeFileSync(join(manifests, "markup.yaml"), `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: markup, namespace: shop, labels: {app: shop, note: script}}
spec:
  owner: '${owner}'
  cpu: 1
  memoryMiB: 1024
  disks: [{name: root, sizeGiB: 10, datastore: shared-ds1}]
  networks: [{name: prod}]
  placement: {cluster: prod}
`);
  const requested: string[] = [];
  page.on("request", (r) => requested.push(r.url()));
  await page.locator("#vm-filter").fill("markup");
  const row = page.locator('.vm-list [data-vm="shop/markup"]');
  await row.waitFor({ timeout: PAGE_WAIT_MS });
  assert.equal(await row.locator('[data-role="owner"]').textContent(), owner, "the list shows the owner as text");
  await row.click();
  await page.locator('[data-role="detail-owner"]', { hasText: "<script>" }).waitFor({ timeout: PAGE_WAIT_MS });
  assert.equal(await page.locator('[data-role="detail-owner"]').textContent(), owner, "the detail shows it as text");
  assert.equal(await page.evaluate("typeof window.injected"), "undefined", "nothing ran");
  assert.equal(await page.locator("#app img").count(), 0, "no element was made from the owner");
  assert.equal(await page.locator("script").count(), 1, "the page's one module script, nothing more");
  assert.deepEqual(requested.filter((u) => u.endsWith("/x")), [], "no image was requested");
  await shoot(t, "markup-as-text");

  // The simulated hosts' token lives in the state directory: nothing the console sends holds it.
  const token = readSimEndpoint(state).token;
  assert.ok(token.length >= 16);
  for (const path of ["/api/fleet", "/api/vms/shop/markup", "/api/vms/shop/db-1"]) {
    const body = await (await fetch(`${origin}${path}`)).text();
    assert.ok(!body.includes(token), `${path} holds the token`);
  }
  assertClean();
});
