// The HTML report: one file carrying the run's data, whose recovery times are the JSON timeline's; every
// string from the scenario and its objects is data, never markup; and, opened in headless Chromium with no
// network, it draws every chart and asks for nothing.

import { before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadScenario, parseScenario } from "../../controller/simulate/scenario.ts";
import { runScenario } from "../../controller/simulate/run.ts";
import type { RunResult } from "../../controller/simulate/run.ts";
import { runJson } from "../../controller/simulate/json-out.ts";
import { renderReport } from "../../controller/simulate/report.ts";
import { REPO, tempDir } from "../support/process.ts";
import { artifactsDir, launchBrowser } from "../support/browser.ts";

const HOSTILE = `</script><script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">`;

/** A small fleet whose scenario text carries markup where a careless report would run it. */
const HOSTILE_SCENARIO = `name: hostile-strings
description: ${JSON.stringify(`Strings from objects are text: ${HOSTILE}`)}
duration: 10m
fleet:
  objects:
    - {apiVersion: vireo.dev/v1alpha1, kind: HostCluster, metadata: {name: prod}, spec: {hostSelector: {matchLabels: {vireo.dev/cluster: prod}}, ha: {enabled: true, failureDetectionSeconds: 15}}}
  generate:
    - count: 2
      object:
        apiVersion: vireo.dev/v1alpha1
        kind: Host
        metadata: {name: "esx-{index}", labels: {vireo.dev/cluster: prod}}
        spec: {hypervisor: esx, cpu: {cores: 16, vendor: intel, features: [], overcommitRatio: 4}, memoryMiB: 65536, datastores: [shared], networks: [prod]}
    - count: 3
      object:
        apiVersion: vireo.dev/v1alpha1
        kind: VirtualMachine
        metadata: {name: "web-{index}", namespace: shop, labels: {note: "a-b"}}
        spec: {cpu: 2, memoryMiB: 4096, disks: [{name: root, sizeGiB: 20, datastore: shared}], networks: [{name: prod}], placement: {cluster: prod}}
timeline:
  - at: 2m
    note: ${JSON.stringify(HOSTILE)}
    fault: {type: HostCrash, host: esx-1}
`;

/**
 * Evaluated in the page: each canvas, named by its id or its chart, with whether anything is drawn on it
 * (more than one colour: a blank canvas is one fill). Text, as the tests are type-checked without the DOM.
 */
const CANVAS_PIXELS = `[...document.querySelectorAll("canvas")].map((canvas) => {
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let drawn = false;
  for (let i = 4; i < data.length && !drawn; i += 4) drawn = data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2] || data[i + 3] !== data[3];
  return { id: canvas.id || canvas.closest("[data-chart]")?.getAttribute("data-chart") || "?", width: canvas.width, height: canvas.height, drawn };
})`;

/** The run's data as the report page reads it. */
function embeddedRun(html: string): RunResult {
  const match = /<script type="application\/json" id="vireo-run">([^<]*)<\/script>/.exec(html);
  assert.ok(match, "no run data in the report");
  return JSON.parse(match[1]!) as RunResult;
}

let rackLoss: RunResult;
let hostile: RunResult;

before(async () => {
  rackLoss = await runScenario(loadScenario(join(REPO, "manifests", "scenarios", "rack-loss-at-peak.yaml")));
  hostile = await runScenario(parseScenario("hostile.yaml", HOSTILE_SCENARIO));
});

test("the recovery times in the report's data are those of the JSON timeline", () => {
  const json = JSON.parse(runJson(rackLoss)) as RunResult;
  const embedded = embeddedRun(renderReport(rackLoss));
  assert.ok(json.summary.recoveries.length > 0);
  assert.deepEqual(embedded.summary.recoveries, json.summary.recoveries);
  assert.deepEqual(embedded.summary.byPriority, json.summary.byPriority);
  assert.deepEqual(embedded.summary.notRecovered, json.summary.notRecovered);
  assert.deepEqual(embedded, json);
});

test("the report is one file: its scripts and styles inline, allowed by hash, and nothing may be fetched", () => {
  const html = renderReport(rackLoss);
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|@import|url\(http/i);
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1]?.replaceAll("&#39;", "'");
  assert.ok(csp, "no Content-Security-Policy");
  assert.match(csp, /^default-src 'none'; script-src 'sha256-[^']+' 'sha256-[^']+' 'sha256-[^']+'; style-src 'sha256-[^']+';/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
});

test("strings from the scenario and its objects reach the report as data, never as markup", () => {
  const html = renderReport(hostile);
  assert.equal(html.match(/<script/g)?.length, 4, "one data and three code scripts, no more");
  assert.doesNotMatch(html, /<img|onerror="|pwned"<\/script>/);
  const embedded = embeddedRun(html);
  assert.equal(embedded.scenario.description, `Strings from objects are text: ${HOSTILE}`);
  assert.equal(embedded.scenario.steps[0]?.note, HOSTILE);
  assert.deepEqual(embedded, JSON.parse(runJson(hostile)));
});

test("opened offline in headless Chromium, the report draws every chart, shows hostile strings as text and requests nothing", async (t) => {
  const dir = tempDir("simulate-report");
  const browser = await launchBrowser({ allowedOrigins: [] });
  t.after(async () => {
    await browser.close();
    dir.remove();
  });
  const artifacts = artifactsDir("simulate");
  for (const [name, result] of [["rack-loss-at-peak", rackLoss], ["hostile-strings", hostile]] as const) {
    const file = join(dir.path, `${name}.html`);
    writeFileSync(file, renderReport(result));
    const page = await browser.newPage();
    const dialogs: string[] = [];
    page.on("dialog", async (dialog) => {
      dialogs.push(dialog.message());
      await dialog.dismiss();
    });
    await page.goto(`file://${file}`);
    await page.waitForSelector("body[data-drawn=true]", { timeout: 15_000 });
    const canvases = await page.evaluate(CANVAS_PIXELS) as { id: string; width: number; height: number; drawn: boolean }[];
    const ids = canvases.map((c) => c.id);
    for (const expected of ["heatmap", "gantt", "vms", "migrating"]) assert.ok(ids.includes(expected), `${name}: no ${expected} chart among ${ids.join(", ")}`);
    for (const canvas of canvases) assert.ok(canvas.width > 0 && canvas.height > 0 && canvas.drawn, `${name}: canvas ${canvas.id} is blank`);
    assert.equal(await page.title(), `Vireo simulation: ${result.scenario.name}`);
    assert.deepEqual(dialogs, []);
    if (name === "hostile-strings") {
      const text = await page.locator("main").innerText();
      assert.ok(text.includes(HOSTILE), "the hostile note is not shown as text");
      assert.equal(await page.locator("main img").count(), 0);
    }
    await browser.screenshot(page, artifacts, name);
    await page.close();
  }
  assert.deepEqual(browser.blockedRequests(), []);
  assert.deepEqual(browser.pageErrors(), []);
});
