// The console in API mode: the examples applied with kubectl to a real kube-apiserver, `vireo run
// --kubeconfig` with the simulated hosts in it, and the console read in Chromium. It shows the fleet the API
// server holds — every host with its phase, every VM where it runs — and the events Vireo records there,
// and nothing of the kubeconfig's credentials.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Host, VirtualMachine } from "../../controller/api/types.ts";
import { ControlPlane, kubectlOk, vireoApiMode } from "../support/cluster.ts";
import { REPO, VireoProcess, WAIT_MS, tempDir } from "../support/process.ts";
import { artifactsDir, launchBrowser, type Browser } from "../support/browser.ts";
import { PAGE_WAIT_MS, consoleOrigin, hostTiles, listedVms, openConsole, until } from "../console/page.ts";

const EXAMPLES = join(REPO, "manifests", "examples");
let cp: ControlPlane;
let vireo: VireoProcess;
let browser: Browser;
let origin: string;
const state = tempDir("kube-console");

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["apply", "-f", EXAMPLES]);
  vireo = vireoApiMode(cp, state.path);
  origin = await consoleOrigin(vireo);
  await vireo.waitForLog(/synced: \d+ hosts in \d+ clusters, \d+ VMs/);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "virtualmachines", "--all", "--all-namespaces", `--timeout=${WAIT_MS / 1000}s`]);
  browser = await launchBrowser({ allowedOrigins: [origin] });
});

after(async () => {
  await browser?.close();
  await vireo?.stop();
  await cp?.stop();
  state.remove();
});

async function apiFleet(): Promise<{ hosts: Map<string, string>; vms: Map<string, { phase: string; host: string }> }> {
  const hosts = JSON.parse(await kubectlOk(cp, ["get", "hosts.vireo.dev", "-o", "json"])) as { items: Host[] };
  const vms = JSON.parse(await kubectlOk(cp, ["get", "virtualmachines.vireo.dev", "-A", "-o", "json"])) as { items: VirtualMachine[] };
  return {
    hosts: new Map(hosts.items.map((h) => [h.metadata.name, h.status?.phase ?? "Unknown"])),
    vms: new Map(vms.items.map((vm) => [`${vm.metadata.namespace}/${vm.metadata.name}`, { phase: vm.status?.phase ?? "Pending", host: vm.status?.host ?? "" }])),
  };
}

const sorted = <V>(map: Map<string, V>) => JSON.stringify([...map].sort(([a], [b]) => a.localeCompare(b)));

test("the console in API mode shows the fleet the API server holds: every host with its phase, every VM where it runs, and Vireo's events", async (t) => {
  const { page } = await openConsole(browser, origin);
  await page.locator(".top .mode", { hasText: "API mode" }).waitFor({ timeout: PAGE_WAIT_MS });

  const api = await apiFleet();
  assert.ok(api.hosts.size >= 3 && api.vms.size >= 3, `the examples are applied: ${api.hosts.size} hosts, ${api.vms.size} VMs`);
  // Both sides are live: compare until they agree (the page follows the API server within a batch).
  await until(async () => sorted(await hostTiles(page)) === sorted((await apiFleet()).hosts), async () => `page ${sorted(await hostTiles(page))}\nAPI ${sorted((await apiFleet()).hosts)}`);
  await until(async () => sorted(await listedVms(page)) === sorted((await apiFleet()).vms), async () => `page ${sorted(await listedVms(page))}\nAPI ${sorted((await apiFleet()).vms)}`);
  await page.locator('.events li[data-reason="Started"]').first().waitFor({ timeout: PAGE_WAIT_MS });
  t.diagnostic(`screenshot: ${await browser.screenshot(page, artifactsDir("console"), "api-mode")}`);

  // The kubeconfig's credentials stay in the process.
  const kubeconfig = readFileSync(cp.kubeconfigPath, "utf8");
  const secrets = [...kubeconfig.matchAll(/(?:client-key-data|client-certificate-data|token):\s*(\S+)/g)].map((m) => m[1]!);
  assert.ok(secrets.length > 0, "the kubeconfig holds credentials");
  for (const path of ["/api/fleet", "/api/vms/shop/db-1", "/"]) {
    const body = await (await fetch(`${origin}${path}`)).text();
    for (const secret of secrets) assert.ok(!body.includes(secret.slice(0, 40)), `${path} holds a credential of the kubeconfig`);
  }
  assert.deepEqual(browser.pageErrors(), []);
  assert.deepEqual(browser.blockedRequests(), []);
});
