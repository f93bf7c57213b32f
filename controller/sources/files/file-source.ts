// The file mode's source of desired state: a directory of YAML manifests (a Git checkout, in the GitOps
// case), watched with chokidar. Valid files replace their objects in the store; an invalid file is
// reported and its last good objects stay in force; a removed file's objects are pruned, as Flux does.

import { readFile } from "node:fs/promises";
import { relative, resolve, sep } from "node:path";
import { randomUUID } from "node:crypto";
import { watch, type FSWatcher } from "chokidar";
import type { VireoObject } from "../../api/types.ts";
import { keyOf } from "../../api/types.ts";
import type { ObjectStore } from "../store.ts";
import type { ManifestError, StateDirectory } from "../../state/state-dir.ts";
import type { Logger } from "../../observe/log.ts";
import type { ControllerMetrics } from "../../observe/metrics.ts";
import { withIdentity } from "../identity.ts";
import { formatManifestError, isManifestFile, parseManifestFile, type ParsedDocument } from "./manifests.ts";

export interface FileSourceOptions {
  dir: string;
  store: ObjectStore;
  state: StateDirectory;
  log: Logger;
  metrics: ControllerMetrics;
  now: () => number;
  /** Delete objects whose manifest was removed (default true, as Flux's prune). */
  prune?: boolean;
  /**
   * Where `vireo migrate` and `vireo balance approve` drop the requests they make (under the state
   * directory, never in the watched checkout): watched like `dir`, for VirtualMachineMigrations only.
   */
  requestsDir?: string;
}

/** How the files of the requests directory are named among the manifests. */
const REQUESTS_PREFIX = "requests:";

export class FileSource {
  private readonly dir: string;
  private readonly requestsDir: string | undefined;
  private readonly options: FileSourceOptions;
  private readonly prune: boolean;
  /** Objects by key, per manifest file (relative path): each file's last good version. */
  private readonly filesObjects = new Map<string, Map<string, VireoObject>>();
  private readonly errors = new Map<string, ManifestError[]>();
  private watcher: FSWatcher | undefined;
  private work: Promise<void> = Promise.resolve();
  private initialScanDone = false;

  constructor(options: FileSourceOptions) {
    this.options = options;
    this.dir = resolve(options.dir);
    this.requestsDir = options.requestsDir === undefined ? undefined : resolve(options.requestsDir);
    this.prune = options.prune ?? true;
  }

  /** Restores the last known objects, scans the directory once, prunes, then keeps watching. */
  async start(): Promise<void> {
    this.restore();
    const seen = new Set<string>();
    this.watcher = watch(this.requestsDir ? [this.dir, this.requestsDir] : this.dir, {
      ignored: (path, stats) => isIgnored(this.rootOf(path), path) || (stats?.isFile() === true && !isManifestFile(path)),
      ignoreInitial: false,
      awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 10 },
    });
    this.watcher.on("add", (path) => { seen.add(this.rel(path)); this.enqueue(() => this.load(path)); });
    this.watcher.on("change", (path) => this.enqueue(() => this.load(path)));
    this.watcher.on("unlink", (path) => this.enqueue(() => this.forget(this.rel(path))));
    this.watcher.on("error", (error) => this.options.log.error({ err: error }, "watching manifests failed"));
    await new Promise<void>((done) => this.watcher!.once("ready", () => done()));
    await this.idle();
    // Files removed while Vireo was not running: their objects go now, once every present file is read.
    for (const file of [...this.filesObjects.keys()]) if (!seen.has(file)) await this.forget(file);
    this.initialScanDone = true;
    this.publishErrors();
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
    await this.idle();
  }

  /** Resolves when every file event so far has been handled. */
  async idle(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.work;
      await current;
    } while (current !== this.work);
  }

  manifestErrors(): ManifestError[] {
    return [...this.errors.values()].flat();
  }

  private enqueue(job: () => Promise<void>): void {
    this.work = this.work.then(job).catch((error: unknown) => this.options.log.error({ err: error }, "handling a manifest change failed"));
  }

  private restore(): void {
    for (const { object, source } of this.options.state.stored()) {
      // An object Vireo made (a lab's VM) has no manifest: it comes back as it was, and its maker decides.
      if (!source) {
        this.options.store.upsert(object);
        continue;
      }
      let objects = this.filesObjects.get(source.file);
      if (!objects) {
        objects = new Map();
        this.filesObjects.set(source.file, objects);
      }
      objects.set(keyOf(object), object);
      this.options.store.upsert(object);
    }
  }

  private async load(path: string): Promise<void> {
    const file = this.rel(path);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return this.forget(file);
      throw error;
    }
    const parsed = parseManifestFile(file, text);
    if (!parsed.ok) return this.reject(file, parsed.errors);
    const misplaced = file.startsWith(REQUESTS_PREFIX) ? parsed.documents.filter((d) => d.object.kind !== "VirtualMachineMigration") : [];
    if (misplaced.length > 0) return this.reject(file, misplaced.map((d) => ({ file, document: d.document, path: "kind", message: `only VirtualMachineMigrations are requests; a ${d.object.kind} belongs in the manifests` })));
    const duplicates = this.duplicatesElsewhere(file, parsed.documents);
    if (duplicates.length > 0) return this.reject(file, duplicates);
    this.errors.delete(file);
    this.replace(file, parsed.documents);
    this.publishErrors();
  }

  private reject(file: string, errors: ManifestError[]): void {
    this.errors.set(file, errors);
    const kept = this.filesObjects.get(file)?.size ?? 0;
    for (const e of errors) this.options.log.error({ file: e.file, document: e.document, field: e.path }, `invalid manifest: ${formatManifestError(e)}`);
    if (kept > 0) this.options.log.warn({ file }, `keeping the last good version of ${file} (${kept} objects)`);
    this.publishErrors();
  }

  private duplicatesElsewhere(file: string, documents: ParsedDocument[]): ManifestError[] {
    const errors: ManifestError[] = [];
    const inThisFile = new Set<string>();
    for (const { document, object } of documents) {
      const key = keyOf(object);
      if (inThisFile.has(key)) errors.push({ file, document, path: "metadata.name", message: `${key} is declared twice in this file` });
      inThisFile.add(key);
      for (const [other, objects] of this.filesObjects) {
        if (other !== file && objects.has(key)) errors.push({ file, document, path: "metadata.name", message: `${key} is already declared in ${other}` });
      }
    }
    return errors;
  }

  private replace(file: string, documents: ParsedDocument[]): void {
    const before = this.filesObjects.get(file) ?? new Map<string, VireoObject>();
    const after = new Map<string, VireoObject>();
    for (const { document, object } of documents) {
      const key = keyOf(object);
      const merged = withIdentity(object, this.options.store.get(key) ?? before.get(key), this.options.now(), randomUUID);
      after.set(key, merged);
      this.options.state.put(merged, { file, document });
      this.options.store.upsert(merged);
    }
    this.filesObjects.set(file, after);
    for (const key of before.keys()) if (!after.has(key)) this.drop(key);
  }

  private async forget(file: string): Promise<void> {
    const objects = this.filesObjects.get(file);
    this.errors.delete(file);
    if (objects) {
      if (this.prune) for (const key of objects.keys()) this.drop(key);
      this.filesObjects.delete(file);
    }
    this.publishErrors();
  }

  private drop(key: string): void {
    if (!this.prune) return;
    this.options.state.remove(key);
    this.options.store.delete(key);
  }

  private publishErrors(): void {
    if (!this.initialScanDone && this.errors.size === 0) return;
    const errors = this.manifestErrors();
    this.options.metrics.manifestErrors.set(this.errors.size);
    this.options.state.setManifestErrors(errors);
  }

  private rel(path: string): string {
    const root = this.rootOf(path);
    const name = relative(root, resolve(path)).split(sep).join("/");
    return root === this.dir ? name : `${REQUESTS_PREFIX}${name}`;
  }

  private rootOf(path: string): string {
    const full = resolve(path);
    return this.requestsDir !== undefined && (full === this.requestsDir || full.startsWith(this.requestsDir + sep)) ? this.requestsDir : this.dir;
  }
}

function isIgnored(root: string, path: string): boolean {
  const rel = relative(root, resolve(path));
  return rel.split(sep).some((part) => part.startsWith(".") && part !== "." && part !== "..");
}
