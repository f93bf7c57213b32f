// Runs the real `vireo` command as a child process, on loopback, in temp dirs, and always cleans up.
//
// Every wait here is for a condition (a log line, a state), with a deadline generous enough for a busy
// machine: a wait that succeeds returns as soon as the condition holds, so the deadline costs nothing then.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSnapshot, type StateSnapshot } from "../../controller/state/state-dir.ts";

export const REPO = join(import.meta.dirname, "..", "..");
export const VIREO = join(REPO, "controller", "cli", "vireo.ts");

/**
 * How long an end-to-end wait allows by default, in real time: long enough for a loaded 2-core machine (a
 * laptop busy with other work, a shared CI runner), where starting a process alone can take seconds.
 */
export const WAIT_MS = 120_000;

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `vireo-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export class VireoProcess {
  readonly child: ChildProcess;
  private output = "";
  private closed = false;
  /**
   * The exit code (null when killed by a signal), once the process has exited and its output has been read
   * to the end ("close", not "exit": at "exit" the last lines may still be in the pipe).
   */
  readonly exited: Promise<number | null>;

  constructor(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [VIREO, ...args], { cwd: options.cwd ?? REPO, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => { this.output += d.toString(); });
    this.child.stderr!.on("data", (d: Buffer) => { this.output += d.toString(); });
    this.exited = new Promise((resolve) => this.child.once("close", (code) => {
      this.closed = true;
      resolve(code);
    }));
  }

  /**
   * What the process logged so far. Logs arrive through a pipe, later than the state directory shows the
   * same change: to assert that a line was logged, wait for it with waitForLog.
   */
  logs(): string {
    return this.output;
  }

  /** Waits until the logs contain `pattern`, failing after `ms` (or once the process is gone) with the logs so far. */
  async waitForLog(pattern: RegExp, ms = WAIT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = this.output.match(pattern);
      if (match) return match;
      if (this.closed) throw new Error(`vireo exited (${this.child.exitCode ?? this.child.signalCode}) before logging ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`vireo did not log ${pattern} within ${ms} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** An object's name and phase, and why it is not Ready when it says: what a failed wait needs to show. */
function summary(object: StateSnapshot["objects"][number]["object"]): string[] {
  const status = object.status as { phase?: string; conditions?: { type: string; status: string; message?: string }[] } | undefined;
  const ready = status?.conditions?.find((c) => c.type === "Ready");
  return [`${object.kind}/${object.metadata.name}`, status?.phase ?? "-", ...(ready && ready.status !== "True" && ready.message ? [ready.message] : [])];
}

/** Polls the state directory until `done` holds, failing after `ms` with what was last seen. */
export async function waitForState(stateDir: string, done: (s: StateSnapshot) => boolean, ms = WAIT_MS, describe?: () => string): Promise<StateSnapshot> {
  const deadline = Date.now() + ms;
  let last: StateSnapshot | undefined;
  for (;;) {
    try {
      last = readSnapshot(join(stateDir, "objects.json"));
    } catch {
      last = undefined; // a reader can race the first write; the rename makes every later read whole
    }
    if (last && done(last)) return last;
    if (Date.now() > deadline) throw new Error(`state not reached within ${ms} ms; last: ${JSON.stringify(last?.objects.map(({ object }) => summary(object)))}\n${describe?.() ?? ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Runs a `vireo` command to its end. It blocks this process: never use it for a command that talks to a
 * `vireo` child of this test (`vireo sim` against a running `vireo run`), whose logs this process must keep
 * reading meanwhile, or a full pipe can stall the child; use vireoCommand there.
 */
export function vireoSync(args: string[], cwd = REPO): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [VIREO, ...args], { cwd, encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a `vireo` command to its end without blocking this process (the tests' other children keep running). */
export async function vireoCommand(args: string[], cwd = REPO): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [VIREO, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
  child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c) => resolve(c));
  });
  return { code, stdout, stderr };
}
