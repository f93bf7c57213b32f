// Shared by the hostsim tests: host and VM descriptions, a way to catch a ProviderError's code, and a
// real `vireo hostsim` child process on loopback with its state and token in a temp dir.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { HttpProvider } from "../../../controller/provider/http/client.ts";
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
