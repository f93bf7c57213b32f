// Crash-safe file replacement: write a temp file beside the target, fsync it, rename it over the target,
// fsync the directory. A reader sees the old file or the new one, never half of one.

import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

let counter = 0;

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${counter++}.tmp`);
  const file = await open(temp, "w", 0o600);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  const directory = await open(dir, "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

/**
 * Saves the latest value given, at most one save in flight: a change while saving causes exactly one
 * more save afterwards. `flush()` resolves once everything requested so far is on disk.
 */
export class CoalescingWriter {
  private readonly path: string;
  private readonly render: () => string;
  private readonly onError: (error: unknown) => void;
  private saving: Promise<void> | undefined;
  private dirty = false;

  constructor(path: string, render: () => string, onError: (error: unknown) => void) {
    this.path = path;
    this.render = render;
    this.onError = onError;
  }

  request(): void {
    this.dirty = true;
    if (!this.saving) this.saving = this.loop();
  }

  async flush(): Promise<void> {
    while (this.saving) await this.saving;
  }

  private async loop(): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        try {
          await writeFileAtomic(this.path, this.render());
        } catch (error) {
          this.onError(error);
        }
      }
    } finally {
      this.saving = undefined;
    }
  }
}
