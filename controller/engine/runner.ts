// Runs reconcile workers over a WorkQueue, in the shape of kubernetes/sample-controller and
// controller-runtime: a worker takes a key, reconciles it, and either forgets it or re-adds it with
// backoff. One key failing, however often, never stops the loop or delays other keys.

import type { WorkQueue } from "./workqueue.ts";

/** What a successful reconcile asks for next (controller-runtime's reconcile.Result). */
export interface ReconcileResult {
  /** Reconcile the key again after this many ms of clock time (periodic checks, lease expiry, …). */
  requeueAfter?: number;
  /** Reconcile again with the key's backoff, without counting as an error (waiting on something). */
  requeue?: boolean;
}

export type ReconcileOutcome = "success" | "error" | "requeue";

export type Reconcile<K> = (key: K) => Promise<ReconcileResult | void> | ReconcileResult | void;

export interface ReconcileRunnerOptions<K extends string> {
  queue: WorkQueue<K>;
  reconcile: Reconcile<K>;
  /** Concurrent reconciles; distinct keys only, the queue sees to that. Default 1, as controller-runtime. */
  workers?: number;
  /** A reconcile threw. `retries` counts its consecutive failures, this one included. */
  onError?: (key: K, error: unknown, retries: number) => void;
  /** Every reconcile, for metrics: how long it took (by `stopwatch`) and how it ended. */
  onReconciled?: (key: K, durationMs: number, outcome: ReconcileOutcome) => void;
  /**
   * Measures reconcile durations; default performance.now. Not the Clock: a virtual clock stands still
   * while a reconcile runs, so it would report every reconcile as taking no time.
   */
  stopwatch?: () => number;
}

/** start() after start() or after stop(): a runner's queue is shut down by stop() and cannot be reused. */
export class RunnerStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunnerStateError";
  }
}

export class ReconcileRunner<K extends string = string> {
  private readonly queue: WorkQueue<K>;
  private readonly reconcile: Reconcile<K>;
  private readonly workerCount: number;
  private readonly onError: ReconcileRunnerOptions<K>["onError"];
  private readonly onReconciled: ReconcileRunnerOptions<K>["onReconciled"];
  private readonly stopwatch: () => number;
  private workers: Promise<void>[] = [];
  private state: "new" | "running" | "stopping" | "stopped" = "new";

  constructor(options: ReconcileRunnerOptions<K>) {
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be an integer >= 1, got ${workers}`);
    this.queue = options.queue;
    this.reconcile = options.reconcile;
    this.workerCount = workers;
    this.onError = options.onError;
    this.onReconciled = options.onReconciled;
    this.stopwatch = options.stopwatch ?? (() => performance.now());
  }

  /** Starts the workers; each is waiting on the queue when this returns. */
  start(): void {
    if (this.state !== "new") throw new RunnerStateError(`cannot start a runner that is ${this.state}`);
    this.state = "running";
    for (let i = 0; i < this.workerCount; i++) this.workers.push(this.work());
  }

  /**
   * Stops taking keys and resolves once every reconcile in flight has finished. Shuts the queue down:
   * keys still queued or delayed are dropped, as a new leader re-lists everything anyway.
   */
  async stop(): Promise<void> {
    if (this.state === "new") {
      this.state = "stopped";
      this.queue.shutDown();
      return;
    }
    if (this.state === "running") this.state = "stopping";
    await this.queue.shutDownWithDrain();
    await Promise.all(this.workers);
    this.state = "stopped";
  }

  /**
   * Resolves when nothing is queued and no reconcile is in flight — at once if that holds now. Keys
   * waiting for a delay (requeueAfter, backoff) are not pending work until their time comes, so on a
   * VirtualClock a test alternates `await clock.advance(ms)` and `await runner.idle()`. Before start()
   * queued keys stay pending; once stopped, it resolves when the last in-flight reconcile has finished.
   */
  idle(): Promise<void> {
    return this.queue.whenIdle();
  }

  isRunning(): boolean {
    return this.state === "running";
  }

  private async work(): Promise<void> {
    while (this.state === "running") {
      const key = await this.queue.get();
      if (key === undefined) return;
      // A key handed out just as stop() began is already in flight: reconcile it rather than drop it.
      await this.process(key);
    }
  }

  private async process(key: K): Promise<void> {
    const started = this.stopwatch();
    try {
      let outcome: ReconcileOutcome;
      try {
        outcome = this.followUp(key, await this.reconcile(key));
      } catch (error) {
        this.queue.addRateLimited(key);
        const retries = this.queue.numRequeues(key);
        outcome = "error";
        callHook(() => this.onError?.(key, error, retries));
      }
      const durationMs = this.stopwatch() - started;
      callHook(() => this.onReconciled?.(key, durationMs, outcome));
    } finally {
      // Even if a hook misbehaves, the key must be released or it would never be processed again.
      this.queue.done(key);
    }
  }

  /** Applies what a successful reconcile asked for, with controller-runtime's precedence. */
  private followUp(key: K, result: ReconcileResult | void): ReconcileOutcome {
    if (result?.requeueAfter !== undefined && result.requeueAfter > 0) {
      this.queue.forget(key);
      this.queue.addAfter(key, result.requeueAfter);
      return "requeue";
    }
    if (result?.requeue) {
      this.queue.addRateLimited(key);
      return "requeue";
    }
    this.queue.forget(key);
    return "success";
  }
}

/**
 * Runs a caller's hook. A hook that throws is a bug in the caller, not in the key being reconciled: it is
 * rethrown on its own (an uncaught exception, loud as a Go panic) so it is neither swallowed nor able to
 * stop the worker loop in between.
 */
function callHook(hook: () => void): void {
  try {
    hook();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
