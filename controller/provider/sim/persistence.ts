// Saving the simulated world durably: each save replaces the file atomically (temp file in the same
// directory, fsync, rename, fsync the directory), so a crash at any instant leaves either the old world
// or the new one on disk, never a torn file. Saves are coalesced: one in flight at a time, and changes
// made during it cause exactly one more save afterwards.

import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

let tempFiles = 0;

export async function writeFileAtomically(path: string, contents: string): Promise<void> {
  const directory = dirname(path);
  tempFiles += 1;
  const temp = join(directory, `.${basename(path)}.${process.pid}.${tempFiles}.tmp`);
  try {
    const file = await open(temp, "w", 0o600);
    try {
      await file.writeFile(contents, "utf8");
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (error) {
    await removeTempFile(temp, error);
    throw error;
  }
  // The rename is durable only once the directory entry is.
  const dir = await open(directory, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function removeTempFile(temp: string, cause: unknown): Promise<void> {
  try {
    await unlink(temp);
  } catch (error) {
    // The temp file may never have been created; any other failure to clean up is reported with the cause.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw new AggregateError([cause, error], `could not save, and could not remove the temp file ${temp}`);
  }
}

/** The file's text, or undefined when there is no file yet. */
export async function readStateFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Keeps the file at `path` up to date with `snapshot()`, saving in the background after each `request()`.
 * Every failed save is handed to `onError` (by default a process warning, so none goes unseen), and
 * `flush()` rejects while the latest state is not on disk.
 */
export class StateWriter {
  readonly path: string;
  private readonly snapshot: () => string;
  private readonly onError: (error: Error) => void;
  private pending = false;
  private inFlight: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(path: string, snapshot: () => string, onError?: (error: Error) => void) {
    this.path = path;
    this.snapshot = snapshot;
    this.onError = onError ?? ((error) => process.emitWarning(error));
  }

  /** The world changed: save it soon. Never blocks the caller. */
  request(): void {
    this.pending = true;
    this.inFlight ??= this.drain();
  }

  /**
   * Resolves once everything requested so far is on disk, trying once more what failed before; rejects
   * (with the first failure since the last flush) when it still is not.
   */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    if (this.pending) {
      this.request();
      while (this.inFlight) await this.inFlight;
    }
    const failure = this.failure;
    this.failure = undefined;
    if (failure && this.pending) throw failure;
  }

  private async drain(): Promise<void> {
    // Let the caller's action finish first: the snapshot is taken after it, never inside it.
    await null;
    try {
      while (this.pending) {
        this.pending = false;
        await writeFileAtomically(this.path, this.snapshot());
      }
    } catch (error) {
      // What failed to reach the disk is still unsaved: the next request or flush tries again.
      this.pending = true;
      const failure = new Error(`could not save the simulated world to ${this.path}`, { cause: error });
      this.failure ??= failure;
      this.onError(failure);
    } finally {
      this.inFlight = undefined;
    }
  }
}
