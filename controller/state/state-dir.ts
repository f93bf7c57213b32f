// The file mode's state directory (default .vireo/): the objects Vireo knows, with their status and the
// manifest they came from, the manifest errors, and the simulated world. Never inside the watched
// checkout: status is Vireo's output and must not dirty a Git working tree.

import { mkdirSync, readFileSync, existsSync, writeFileSync, unlinkSync } from "node:fs";
import { join, resolve, relative, isAbsolute } from "node:path";
import type { VireoObject } from "../api/types.ts";
import { keyOf } from "../api/types.ts";
import { CoalescingWriter } from "./atomic-write.ts";

export const STATE_FORMAT = "vireo.dev/state/v1";

export interface ObjectSource {
  /** The manifest file, relative to the watched directory. */
  file: string;
  /** The document's index in that file, from 0. */
  document: number;
}

export interface ManifestError {
  file: string;
  document?: number;
  path?: string;
  message: string;
}

export interface StoredObject {
  object: VireoObject;
  source?: ObjectSource;
}

export interface StateSnapshot {
  format: typeof STATE_FORMAT;
  updatedAt: string;
  objects: StoredObject[];
  manifestErrors: ManifestError[];
}

export class StateCorruptError extends Error {
  constructor(path: string, options?: { cause?: unknown }) {
    super(`state file ${path} cannot be read; move it away to start afresh`, options);
    this.name = "StateCorruptError";
  }
}

export class StateDirectory {
  readonly dir: string;
  readonly objectsPath: string;
  readonly worldPath: string;
  private readonly lockPath: string;
  private readonly entries = new Map<string, StoredObject>();
  private errors: ManifestError[] = [];
  private readonly writer: CoalescingWriter;
  private readonly now: () => number;

  constructor(dir: string, options: { now: () => number; onSaveError: (error: unknown) => void }) {
    this.dir = resolve(dir);
    this.objectsPath = join(this.dir, "objects.json");
    this.worldPath = join(this.dir, "world.json");
    this.lockPath = join(this.dir, "vireo.pid");
    this.now = options.now;
    this.writer = new CoalescingWriter(this.objectsPath, () => JSON.stringify(this.snapshot(), null, 1), options.onSaveError);
  }

  /** Refuses a state directory inside the watched one: status would dirty the checkout and feed back as input. */
  static checkOutside(stateDir: string, manifestsDir: string): void {
    const rel = relative(resolve(manifestsDir), resolve(stateDir));
    if (rel === "" || (!rel.startsWith("..") && !isAbsolute(rel))) {
      throw new Error(`the state directory ${stateDir} is inside the manifests directory ${manifestsDir}; choose another with --state-dir`);
    }
  }

  /** Creates the directory and takes its lock: two `vireo run` on one state would run every VM twice. */
  open(): void {
    mkdirSync(this.dir, { recursive: true });
    if (existsSync(this.lockPath)) {
      const pid = Number(readFileSync(this.lockPath, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new Error(`state directory ${this.dir} is in use by process ${pid}`);
      }
    }
    writeFileSync(this.lockPath, `${process.pid}\n`);
    this.load();
  }

  close(): void {
    if (existsSync(this.lockPath) && readFileSync(this.lockPath, "utf8").trim() === String(process.pid)) unlinkSync(this.lockPath);
  }

  /** Reads the saved objects, if any. */
  load(): void {
    const saved = readSnapshot(this.objectsPath);
    if (!saved) return;
    for (const entry of saved.objects) this.entries.set(keyOf(entry.object), entry);
    this.errors = saved.manifestErrors;
  }

  stored(): StoredObject[] {
    return [...this.entries.values()];
  }

  get(key: string): StoredObject | undefined {
    return this.entries.get(key);
  }

  put(object: VireoObject, source?: ObjectSource): void {
    this.entries.set(keyOf(object), source ? { object, source } : { object });
    this.writer.request();
  }

  setStatus(key: string, status: VireoObject["status"]): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.object = { ...entry.object, status } as VireoObject;
    this.writer.request();
  }

  remove(key: string): void {
    if (this.entries.delete(key)) this.writer.request();
  }

  setManifestErrors(errors: ManifestError[]): void {
    this.errors = errors;
    this.writer.request();
  }

  manifestErrors(): ManifestError[] {
    return this.errors;
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  snapshot(): StateSnapshot {
    return {
      format: STATE_FORMAT,
      updatedAt: new Date(this.now()).toISOString(),
      objects: [...this.entries.values()],
      manifestErrors: this.errors,
    };
  }
}

/** Reads a state file written by a running or stopped `vireo run`; undefined when there is none. */
export function readSnapshot(path: string): StateSnapshot | undefined {
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new StateCorruptError(path, { cause: error });
  }
  const snapshot = parsed as Partial<StateSnapshot>;
  if (snapshot.format !== STATE_FORMAT || !Array.isArray(snapshot.objects)) throw new StateCorruptError(path);
  return { format: STATE_FORMAT, updatedAt: snapshot.updatedAt ?? "", objects: snapshot.objects, manifestErrors: snapshot.manifestErrors ?? [] };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
