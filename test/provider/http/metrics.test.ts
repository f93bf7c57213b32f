// A real `vireo hostsim` with --metrics-addr: /metrics on a listener of its own, without the token, counts
// every request by route pattern (never the raw path), method and code, and the split-brain attempts kept
// in the world; and everything it exposes is in docs/metrics.md's hostsim section (the Process section's
// metrics under the prefix vireo_hostsim_), and everything that section lists is exposed.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { REPO, tempDir } from "../../support/process.ts";
import { TOKEN, hostConfig, refusal, startHostsim, vmConfig, writeToken } from "./hostsim-support.ts";

/** The metric names of the rows of docs/metrics.md, by mode. */
function documented(): Map<string, string> {
  const doc = readFileSync(join(REPO, "docs", "metrics.md"), "utf8");
  return new Map([...doc.matchAll(/^\| `(vireo_[a-z0-9_]+)` \| [^|]+\| [^|]+\| ([^|]+)\|/gm)].map((m) => [m[1]!, m[2]!.trim().split(" ")[0]!]));
}

/** The rows of the Process section, which hostsim exposes under its own prefix. */
function processSection(): Set<string> {
  const doc = readFileSync(join(REPO, "docs", "metrics.md"), "utf8");
  const section = doc.slice(doc.indexOf("\n## Process\n"), doc.indexOf("\n## ", doc.indexOf("\n## Process\n") + 1));
  return new Set([...section.matchAll(/^\| `vireo_([a-z0-9_]+)` \|/gm)].map((m) => m[1]!).filter((n) => n !== "build_info"));
}

function families(text: string): Set<string> {
  const helped = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!));
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!).filter((n) => helped.has(n)));
}

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`, "gm"))) {
    const got = Object.fromEntries([...(m[1] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[2]);
  }
  return undefined;
}

test("hostsim's /metrics counts requests by route and code and the split-brain attempts, unauthenticated on its own port, as docs/metrics.md lists them", async (t) => {
  const dir = tempDir("hostsim-metrics");
  const hostsim = await startHostsim({ state: join(dir.path, "world.json"), tokenFile: writeToken(dir.path), extra: ["--metrics-addr", "127.0.0.1:0"] });
  t.after(async () => {
    await hostsim.process.stop();
    dir.remove();
  });
  const metricsUrl = `http://${(await hostsim.process.waitForLog(/hostsim metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!}`;
  const { client, url } = hostsim;

  await client.registerHost("h1", hostConfig());
  await client.registerHost("small", hostConfig({ memoryMiB: 2048 }));
  await client.startVm("shop/db-1", "h1", vmConfig());
  await client.isolateHost("h1");
  assert.equal(await refusal(client.startVm("shop/db-1", "small", vmConfig({ memoryMiB: 1024 }))), "LockHeld");
  const api = (path: string, init: RequestInit = {}, token: string | null = TOKEN) =>
    fetch(`${url}${path}`, { ...init, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  assert.equal((await api("/v1/hosts/..%2F..%2Fetc%2Fpasswd", { method: "PUT", body: "{}" })).status, 422);
  assert.equal((await api("/v1/hosts/..%2F..%2Fetc%2Fshadow", { method: "DELETE" })).status, 422);
  assert.equal((await api("/v1/volcanoes/etna")).status, 404);
  assert.equal((await api("/v1/observation", {}, "wrong")).status, 401);
  assert.equal((await api("/metrics", {}, null)).status, 401, "the API's port serves no metrics without the token");
  assert.equal((await api("/metrics")).status, 404, "nor with it: they are on their own port");

  const scrape = await fetch(`${metricsUrl}/metrics`);
  assert.equal(scrape.status, 200, "no token needed");
  const text = await scrape.text();
  const requests = (route: string, method: string, code: string) => sample(text, "vireo_hostsim_requests_total", { route, method, code });
  assert.equal(requests("/v1/hosts/:host", "PUT", "204"), 2);
  assert.equal(requests("/v1/vms/:namespace/:name/start", "POST", "200"), 1);
  assert.equal(requests("/v1/vms/:namespace/:name/start", "POST", "409"), 1);
  assert.equal(requests("/v1/sim/hosts/:host/isolate", "POST", "204"), 1);
  assert.equal(requests("/v1/hosts/:host", "PUT", "422"), 1);
  assert.equal(requests("/v1/hosts/:host", "DELETE", "422"), 1);
  assert.equal(requests("unmatched", "GET", "404"), 2, "/v1/volcanoes/etna and /metrics");
  assert.equal(requests("/v1/observation", "GET", "401"), 1);
  assert.ok(!/route="[^"]*(passwd|shadow|etna)/.test(text), "no raw path is a label");
  assert.equal(sample(text, "vireo_hostsim_split_brain_attempts", {}), 1);
  assert.equal(sample(text, "vireo_hostsim_build_info", {}), 1);
  assert.ok((sample(text, "vireo_hostsim_request_duration_seconds_count", { route: "/v1/hosts/:host", method: "PUT" }) ?? 0) >= 3);
  assert.equal((await fetch(`${metricsUrl}/readyz`)).status, 200);
  assert.equal((await fetch(`${metricsUrl}/metrics`, { method: "POST" })).status, 405, "read-only");

  const docs = documented();
  const listed = [...docs].filter(([, mode]) => mode === "hostsim").map(([name]) => name);
  const processMetrics = processSection();
  const scraped = families(text);
  const undocumented = [...scraped].filter((n) => !listed.includes(n) && !processMetrics.has(n.replace(/^vireo_hostsim_/, "")));
  assert.deepEqual(undocumented, [], "scraped but not in docs/metrics.md");
  assert.deepEqual(listed.filter((n) => !scraped.has(n)), [], "in docs/metrics.md (mode hostsim) but not scraped");
  assert.ok(scraped.has("vireo_hostsim_process_resident_memory_bytes"), "the process metrics, under hostsim's prefix");
  assert.ok(!scraped.has("vireo_build_info"), "never the controller's build info: its absence is VireoControllerAbsent");
});
