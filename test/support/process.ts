// Runs the real `vireo` command as a child process, on loopback, in temp dirs, and always cleans up.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSnapshot, type StateSnapshot } from "../../controller/state/state-dir.ts";

export const REPO = join(import.meta.dirname, "..", "..");
export const VIREO = join(REPO, "controller", "cli", "vireo.ts");

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `vireo-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export class VireoProcess {
  readonly child: ChildProcess;
  private output = "";
  readonly exited: Promise<number | null>;

  constructor(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [VIREO, ...args], { cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => { this.output += d.toString(); });
    this.child.stderr!.on("data", (d: Buffer) => { this.output += d.toString(); });
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  logs(): string {
    return this.output;
  }

  /** Waits until the logs contain `pattern`, failing after `ms` with the logs so far. */
  async waitForLog(pattern: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null) throw new Error(`vireo exited (${this.child.exitCode}) before logging ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`vireo did not log ${pattern} within ${ms} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Polls the state directory until `done` holds, failing after `ms` with what was last seen. */
export async function waitForState(stateDir: string, done: (s: StateSnapshot) => boolean, ms = 30_000, describe?: () => string): Promise<StateSnapshot> {
  const deadline = Date.now() + ms;
  let last: StateSnapshot | undefined;
  for (;;) {
    try {
      last = readSnapshot(join(stateDir, "objects.json"));
    } catch {
      last = undefined; // a reader can race the first write; the rename makes every later read whole
    }
    if (last && done(last)) return last;
    if (Date.now() > deadline) throw new Error(`state not reached within ${ms} ms; last: ${JSON.stringify(last?.objects.map((o) => [o.object.metadata.name, o.object.status && (o.object.status as { phase?: string }).phase]))}\n${describe?.() ?? ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function vireoSync(args: string[], cwd = REPO): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [VIREO, ...args], { cwd, encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}
