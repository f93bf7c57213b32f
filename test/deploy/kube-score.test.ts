// kube-score (built by the test set-up, test/tools/kube-score) on every rendering of the deployment: the
// chart with default values, the chart with every option on, and manifests/deploy. Every finding it grades
// critical or warning must be one of the exceptions below, each reasoned in docs/deploy.md ("kube-score"),
// and every exception must still be found, so a fixed one leaves the list.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ensureKubeScore } from "../tools/setup.ts";
import { REPO } from "../support/process.ts";
import { ALL_OPTIONS, Renderer, parseAll, run } from "./renderings.ts";

type Severity = "critical" | "warning";

interface Finding { rendering: string; check: string; severity: Severity; object: string; summary: string }

interface Exception {
  check: string;
  severity: Severity;
  /** The objects it is found on, as Kind/name. */
  objects: readonly string[];
  renderings: readonly string[];
}

const DEFAULTS = "the chart with default values";
const ALL = "the chart with every option on";
const KUSTOMIZE = "manifests/deploy";

// Why each is left as it is: docs/deploy.md, "kube-score".
const EXCEPTIONS: readonly Exception[] = [
  { check: "container-image-pull-policy", severity: "critical", objects: ["Deployment/vireo-controller", "Deployment/vireo-hostsim"], renderings: [DEFAULTS, KUSTOMIZE] },
  { check: "pod-networkpolicy", severity: "warning", objects: ["Deployment/vireo-controller"], renderings: [DEFAULTS, KUSTOMIZE] },
  { check: "deployment-replicas", severity: "warning", objects: ["Deployment/vireo-hostsim", "Deployment/vireo-lab-prod-hostsim"], renderings: [DEFAULTS, ALL, KUSTOMIZE] },
  { check: "deployment-strategy", severity: "warning", objects: ["Deployment/vireo-hostsim", "Deployment/vireo-lab-prod-hostsim"], renderings: [DEFAULTS, ALL, KUSTOMIZE] },
];

// kube-score's grades (scorecard.Grade): 1 critical, 5 warning, 7 almost OK, 10 OK.
const GRADES: Readonly<Record<number, Severity>> = { 1: "critical", 5: "warning" };

interface ScoredObject {
  type_meta: { kind: string };
  object_meta: { name: string };
  checks: { check: { id: string }; grade: number; skipped: boolean; comments: { summary: string }[] | null }[];
}

let kubeScore = "";
let renderer: Renderer;
const renderings = new Map<string, string>();

before(async () => {
  kubeScore = await ensureKubeScore();
  renderer = await Renderer.create();
  renderings.set(DEFAULTS, await renderer.chart());
  renderings.set(ALL, await renderer.chart("--values", ALL_OPTIONS));
  renderings.set(KUSTOMIZE, await renderer.kustomization());
});

after(() => renderer?.remove());

/** kube-score's default checks on one rendering, against the Kubernetes version of the test control plane. */
async function score(name: string): Promise<{ scored: ScoredObject[]; findings: Finding[] }> {
  const ran = await run(kubeScore, ["score", "--output-format", "json", "--kubernetes-version", "v1.36", "-"], { input: renderings.get(name)! });
  // It exits 1 when it found something critical; anything it could not read is an error on stderr.
  assert.ok(ran.code === 0 || ran.code === 1, `kube-score failed on ${name}:\n${ran.stderr}`);
  const scored = JSON.parse(ran.stdout) as ScoredObject[];
  const findings = scored.flatMap((o) =>
    o.checks
      .filter((c) => !c.skipped && GRADES[c.grade] !== undefined)
      .map((c) => ({ rendering: name, check: c.check.id, severity: GRADES[c.grade]!, object: `${o.type_meta.kind}/${o.object_meta.name}`, summary: (c.comments ?? []).map((x) => x.summary).join("; ") })));
  return { scored, findings };
}

function excused(finding: Finding): boolean {
  return EXCEPTIONS.some((e) => e.check === finding.check && e.severity === finding.severity && e.objects.includes(finding.object) && e.renderings.includes(finding.rendering));
}

/** The checks docs/deploy.md's kube-score table reasons about, with their severity. */
function documentedExceptions(): Map<string, string> {
  const doc = readFileSync(join(REPO, "docs", "deploy.md"), "utf8");
  const start = doc.indexOf("\n## kube-score");
  assert.ok(start >= 0, "docs/deploy.md has a kube-score section");
  const section = doc.slice(start, doc.indexOf("\n## ", start + 1) >>> 0 || undefined);
  return new Map([...section.matchAll(/^\| `([a-z0-9-]+)` \| (critical|warning) \|/gm)].map((m) => [m[1]!, m[2]!]));
}

describe("kube-score", () => {
  const found: Finding[] = [];

  for (const name of [DEFAULTS, ALL, KUSTOMIZE]) {
    test(`${name}: no critical finding or warning that is not a documented exception`, async (t) => {
      const { scored, findings } = await score(name);
      const kinds = new Set(scored.map((o) => o.type_meta.kind));
      for (const kind of ["Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"]) assert.ok(kinds.has(kind), `kube-score scored the ${kind}s of ${name}`);
      const objects = parseAll(renderings.get(name)!).filter((o) => o.kind === "Deployment");
      assert.equal(scored.filter((o) => o.type_meta.kind === "Deployment").length, objects.length, "every Deployment is scored");
      for (const f of findings) t.diagnostic(`${f.severity} ${f.check} on ${f.object}: ${f.summary}`);
      found.push(...findings);
      const unexcused = findings.filter((f) => !excused(f));
      assert.deepEqual(unexcused, [], `fix these, or reason about them in docs/deploy.md and list them here`);
    });
  }

  test("every exception is documented in docs/deploy.md with its severity, and still found", () => {
    const documented = documentedExceptions();
    for (const e of EXCEPTIONS) {
      assert.equal(documented.get(e.check), e.severity, `docs/deploy.md reasons about ${e.check} (${e.severity})`);
      for (const rendering of e.renderings) {
        assert.ok(found.some((f) => f.check === e.check && f.rendering === rendering), `${e.check} is no longer found in ${rendering}: drop it from the exceptions`);
      }
    }
    assert.deepEqual([...documented.keys()].filter((check) => !EXCEPTIONS.some((e) => e.check === check)), [], "docs/deploy.md lists only the exceptions the test allows");
  });
});
