// A sped-up clock that never runs backwards across restarts: the time is noted in the state directory every
// second, and a new process resumes from the latest time any record there holds (the noted time, the
// objects' snapshot, the simulated hosts' saved world).

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Clock } from "../core/clock.ts";
import type { Logger } from "../observe/log.ts";
import { writeFileAtomic } from "../state/atomic-write.ts";
import { readSnapshot } from "../state/state-dir.ts";

const CLOCK_FILE = "clock";

/** When the previous run last noted the time, in any record the state directory holds; 0 for none. */
export function lastSavedTime(stateDir: string): number {
  const saved = readSnapshot(join(stateDir, "objects.json"));
  return Math.max(
    saved?.updatedAt ? Date.parse(saved.updatedAt) : 0,
    numberIn(join(stateDir, CLOCK_FILE), (text) => Number(text)),
    numberIn(join(stateDir, "world.json"), (text) => (JSON.parse(text) as { savedAt?: unknown }).savedAt),
  );
}

function numberIn(path: string, read: (text: string) => unknown): number {
  if (!existsSync(path)) return 0;
  try {
    const value = read(readFileSync(path, "utf8"));
    return typeof value === "number" && Number.isFinite(value) ? value : 0;
  } catch {
    return 0;
  }
}

/** Notes the clock's time every second; the returned function stops, noting the time a last time. */
export function noteTimePeriodically(stateDir: string, clock: Clock, log: Logger): () => Promise<void> {
  const path = join(stateDir, CLOCK_FILE);
  let writing: Promise<void> = Promise.resolve();
  const note = () => {
    writing = writeFileAtomic(path, String(clock.now())).catch((err: unknown) => log.warn({ err }, "noting the time failed"));
  };
  const timer = setInterval(note, 1_000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await writing;
    note();
    await writing;
  };
}
