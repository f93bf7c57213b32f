// A real control plane for a test file, and `vireo` running against it as a separate process.

import assert from "node:assert/strict";
import { join } from "node:path";
import { existsSync, readFileSync } from "node:fs";
import { ControlPlane } from "../envtest/controlplane.ts";
import { VireoProcess } from "./process.ts";

export { ControlPlane };

/**
 * Runs kubectl and returns its output, failing on a non-zero exit. A `--timeout=Ns` among the arguments
 * (kubectl wait, kubectl delete) is kubectl's own deadline: the process is given 30 s beyond it.
 */
export async function kubectlOk(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const timeout = args.map((a) => /^--timeout=(\d+)s$/.exec(a)?.[1]).find((s) => s !== undefined);
  const r = await cp.kubectl(args, { ...(input !== undefined ? { input } : {}), ...(timeout !== undefined ? { timeoutMs: Number(timeout) * 1000 + 30_000 } : {}) });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")} failed:\n${r.stderr}`);
  return r.stdout;
}

export function vireoApiMode(cp: ControlPlane, stateDir: string, extra: string[] = []): VireoProcess {
  return new VireoProcess(["run", "--kubeconfig", cp.kubeconfigPath, "--state-dir", stateDir, "--metrics-addr", "127.0.0.1:0", "--time-scale", "50", ...extra]);
}

/** The in-process simulator's world as `vireo run` saved it: VM id -> where it is and since when it runs. */
export function worldVms(stateDir: string): Map<string, { host: string; power: string; poweredOnAt?: number }> {
  const path = join(stateDir, "world.json");
  if (!existsSync(path)) return new Map();
  const world = JSON.parse(readFileSync(path, "utf8")) as { vms: { id: string; host: string; power: string; poweredOnAt?: number }[] };
  return new Map(world.vms.map((vm) => [vm.id, { host: vm.host, power: vm.power, ...(vm.poweredOnAt !== undefined ? { poweredOnAt: vm.poweredOnAt } : {}) }]));
}

/** Polls until `check` returns true, failing after `ms` (of real time; be generous) with `describe()`. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number, describe: () => string | Promise<string>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not reached within ${ms} ms: ${await describe()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
