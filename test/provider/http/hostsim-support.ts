// Shared by the hostsim tests: host and VM descriptions, a way to catch a ProviderError's code, hostsim's
// server in this process on a virtual clock, and a real `vireo hostsim` child process on loopback with its
// state and token in a temp dir.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { VirtualClock } from "../../../controller/core/clock.ts";
import { silentLogger } from "../../../controller/observe/log.ts";
import { HttpProvider } from "../../../controller/provider/http/client.ts";
import { HostsimServer } from "../../../controller/provider/http/server.ts";
import { SimulatedHosts } from "../../../controller/provider/sim/index.ts";
export { hostConfig, refusal, vmConfig } from "../../support/provider.ts";
import { VireoProcess } from "../../support/process.ts";

export const TOKEN = "hostsim-test-token-7f3a";
export const TIME_SCALE = "50";

/** Writes the token file (with a trailing newline, as editors and `kubectl create secret` leave it). */
export function writeToken(dir: string, token = TOKEN): string {
  const path = join(dir, "token");
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return path;
}

export interface RunningHostsim {
  process: VireoProcess;
  url: string;
  client: HttpProvider;
}

/** Starts `vireo hostsim` and waits until it prints where it listens. */
export async function startHostsim(options: { state: string; tokenFile: string; listen?: string; extra?: string[] }): Promise<RunningHostsim> {
  const child = new VireoProcess([
    "hostsim",
    "--listen", options.listen ?? "127.0.0.1:0",
    "--state", options.state,
    "--token-file", options.tokenFile,
    "--time-scale", TIME_SCALE,
    ...(options.extra ?? []),
  ]);
  const match = await child.waitForLog(/listening on (http:\/\/[^\s;"]+)/);
  const url = match[1]!;
  return { process: child, url, client: new HttpProvider({ url, token: TOKEN }) };
}

/** Polls `check` every 20 ms until it returns a value, failing after `ms` of real time. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 15_000, what = "the condition"): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`${what} did not hold within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * hostsim's server in this process, on loopback, over simulated hosts on a virtual clock, closed when the
 * test ends; `client` speaks to it with the token.
 */
export async function serveInProcess(t: TestContext, options: { seed?: number; token?: string; insecureNoAuth?: boolean } = {}) {
  const clock = new VirtualClock();
  const sim = new SimulatedHosts({ clock, seed: options.seed ?? 3 });
  const token = "token" in options ? options.token : TOKEN;
  const server = new HostsimServer({ sim, timeScale: 1, token, insecureNoAuth: options.insecureNoAuth ?? false, log: silentLogger() });
  const url = `http://${await server.listen("127.0.0.1:0")}`;
  t.after(async () => {
    await server.close();
    await sim.close();
  });
  return { clock, sim, server, url, client: new HttpProvider({ url, token: TOKEN }) };
}
