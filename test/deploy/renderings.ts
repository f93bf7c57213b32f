// The deployment's renderings, as the deployment tests read them: `helm template` of the chart (with the
// helm built beside the test control plane) and `kubectl kustomize` of manifests/deploy, as YAML text and
// as objects.

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { ensureControlPlaneBinaries } from "../envtest/setup.ts";
import { REPO, tempDir } from "../support/process.ts";

export const CHART = join(REPO, "helm", "vireo");
export const ALL_OPTIONS = join(CHART, "ci", "all-options-values.yaml");
export const DEPLOY = join(REPO, "manifests", "deploy");
export const NAMESPACE = "vireo-system";
export const RELEASE = "vireo";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export interface Ran { code: number; stdout: string; stderr: string }

export function run(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: REPO, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}${error.message}` : stderr });
    });
    child.stdin?.end(options.input ?? "");
  });
}

export function parseAll(text: string): KubeObject[] {
  return (loadAll(text) as (KubeObject | null)[]).filter((o): o is KubeObject => o !== null && typeof o === "object");
}

function ok(result: Ran, what: string): string {
  if (result.code !== 0) throw new Error(`${what} failed:\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** Renders the chart and the kustomization; helm's state lives in a temp dir until `remove`. */
export class Renderer {
  private readonly home = tempDir("helm-home");
  private readonly helm: string;
  private constructor(helm: string) {
    this.helm = helm;
  }

  static async create(): Promise<Renderer> {
    const binDir = await ensureControlPlaneBinaries();
    return new Renderer(existsSync(join(binDir, "helm")) ? join(binDir, "helm") : "helm");
  }

  /** `helm template` of the chart in the release namespace, CRDs included, with these extra arguments. */
  async chart(...args: string[]): Promise<string> {
    const env: NodeJS.ProcessEnv = { ...process.env, HELM_CACHE_HOME: join(this.home.path, "cache"), HELM_CONFIG_HOME: join(this.home.path, "config"), HELM_DATA_HOME: join(this.home.path, "data") };
    return ok(await run(this.helm, ["template", RELEASE, CHART, "--namespace", NAMESPACE, "--include-crds", ...args], { env }), `helm template ${args.join(" ")}`);
  }

  /** `kubectl kustomize manifests/deploy`. */
  async kustomization(): Promise<string> {
    return ok(await run("kubectl", ["kustomize", DEPLOY]), "kubectl kustomize manifests/deploy");
  }

  remove(): void {
    this.home.remove();
  }
}
