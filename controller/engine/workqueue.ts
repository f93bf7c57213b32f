// The work queue between event sources and reconcile workers, with client-go's guarantees
// (k8s.io/client-go/util/workqueue): a key is never handed to two workers at once, a key added while it is
// being processed is handed out again after done(), duplicates collapse while queued, order is FIFO,
// and delayed or rate-limited adds go through the injected Clock.

import type { Clock, Timer } from "../core/clock.ts";
import { defaultControllerRateLimiter, type RateLimiter } from "./ratelimit.ts";

/** Hooks for metrics (observe/ counts depth, adds, retries and time in queue). All are optional. */
export interface WorkQueueEvents<K> {
  /** Keys waiting for a worker, counting those re-added while being processed (client-go's depth). */
  onDepth?(depth: number): void;
  /** A key became pending; duplicates that collapse into a pending key are not counted. */
  onAdd?(key: K): void;
  /** A key was re-added through the rate limiter after a failure. */
  onRetry?(key: K): void;
  /** Clock time (ms) between a key becoming pending and a worker receiving it. */
  onQueueLatency?(key: K, ms: number): void;
}

export interface WorkQueueOptions<K> {
  clock: Clock;
  /** Defaults to defaultControllerRateLimiter(clock): 5 ms doubling to 1000 s, 10 qps / burst 100, jitter. */
  rateLimiter?: RateLimiter<K>;
  events?: WorkQueueEvents<K>;
}

/** done() was called for a key no worker holds: a bug in the caller, which would otherwise duplicate the key. */
export class NotProcessingError extends Error {
  readonly key: string;

  constructor(key: string) {
    super(`done(${JSON.stringify(key)}) called for a key that is not being processed`);
    this.name = "NotProcessingError";
    this.key = key;
  }
}

interface DelayedEntry<K> {
  key: K;
  due: number;
  seq: number;
}

/**
 * Keys waiting for their due time, soonest first, at most one live entry per key (the earliest due time).
 * Superseded entries stay in the heap and are skipped when they surface: cheaper than a decrease-key.
 */
class DelayedKeys<K> {
  private readonly heap: DelayedEntry<K>[] = [];
  private readonly dueByKey = new Map<K, number>();
  private seq = 0;

  get size(): number {
    return this.dueByKey.size;
  }

  /** Records `key` as due at `due` unless it is already due sooner. */
  schedule(key: K, due: number): void {
    const existing = this.dueByKey.get(key);
    if (existing !== undefined && existing <= due) return;
    this.dueByKey.set(key, due);
    this.push({ key, due, seq: this.seq++ });
  }

  /** The soonest due time, or undefined when nothing waits. */
  nextDue(): number | undefined {
    this.dropSuperseded();
    return this.heap[0]?.due;
  }

  /** Removes and returns every key due at or before `now`, in (due time, scheduling) order. */
  takeDue(now: number): K[] {
    const due: K[] = [];
    for (let next = this.nextDue(); next !== undefined && next <= now; next = this.nextDue()) {
      const entry = this.pop();
      this.dueByKey.delete(entry.key);
      due.push(entry.key);
    }
    return due;
  }

  clear(): void {
    this.heap.length = 0;
    this.dueByKey.clear();
  }

  private dropSuperseded(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.dueByKey.get(top.key) === top.due) return;
      this.pop();
    }
  }

  private static before<K>(a: DelayedEntry<K>, b: DelayedEntry<K>): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private push(entry: DelayedEntry<K>): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!DelayedKeys.before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): DelayedEntry<K> {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length === 0) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && DelayedKeys.before(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && DelayedKeys.before(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return top;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}

export class WorkQueue<K extends string = string> {
  private readonly clock: Clock;
  private readonly rateLimiter: RateLimiter<K>;
  private readonly events: WorkQueueEvents<K>;

  /** Keys waiting for a worker, in order. Every key here is also in `dirty`. */
  private readonly queue: K[] = [];
  /** Keys that need processing: queued, or re-added while being processed. */
  private readonly dirty = new Set<K>();
  /** Keys held by a worker between get() and done(). */
  private readonly processing = new Set<K>();
  /** When each dirty key became pending, for the time-in-queue metric. */
  private readonly pendingSince = new Map<K, number>();
  /** Workers blocked in get(). Non-empty only while `queue` is empty. */
  private readonly getters: Array<(key: K | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];

  private readonly delayed = new DelayedKeys<K>();
  /** One timer, for the soonest delayed key, however many keys are delayed. */
  private delayTimer: { timer: Timer; due: number } | undefined;
  private shuttingDown = false;

  constructor(options: WorkQueueOptions<K>) {
    this.clock = options.clock;
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter<K>(options.clock);
    this.events = options.events ?? {};
  }

  /** Marks `key` as needing processing. Ignored after shutdown. */
  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.pendingSince.set(key, this.clock.now());
    this.events.onAdd?.(key);
    // A key being processed waits in `dirty` until done(): it must never reach a second worker.
    if (!this.processing.has(key)) this.enqueue(key);
    this.events.onDepth?.(this.dirty.size);
  }

  /** Adds `key` once `ms` of clock time have passed; a key already waiting keeps its earlier due time. */
  addAfter(key: K, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    this.delayed.schedule(key, this.clock.now() + ms);
    this.armDelayTimer();
  }

  /** Adds `key` after the rate limiter's delay for it: backoff grows with each failure until forget(). */
  addRateLimited(key: K): void {
    if (this.shuttingDown) return;
    this.events.onRetry?.(key);
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Resets the failure count of `key`: call it when `key` was processed successfully. */
  forget(key: K): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process, waiting for one if none is queued. Resolves undefined once the queue is shut
   * down and empty (keys queued before shutdown are still handed out, as in client-go). The caller must
   * call done(key) when finished with it.
   */
  get(): Promise<K | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.handOut(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Ends processing of `key`; if it was re-added meanwhile, it is queued again. */
  done(key: K): void {
    if (!this.processing.delete(key)) throw new NotProcessingError(key);
    if (this.dirty.has(key)) this.enqueue(key);
    this.notifyIfIdle();
  }

  /** Keys queued and waiting for a worker (not counting delayed keys or keys being processed). */
  len(): number {
    return this.queue.length;
  }

  /** Keys being processed by a worker now. */
  inFlight(): number {
    return this.processing.size;
  }

  /** Keys waiting for their addAfter or backoff delay to pass. */
  delayedCount(): number {
    return this.delayed.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Resolves when no key is queued and none is being processed — at once if that holds now. Keys whose
   * delay has not yet passed are not pending work. After shutdown only keys being processed count.
   * Every call gets its own promise, so it can be awaited again and again.
   */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops accepting keys, drops delayed ones and releases workers waiting in get(). */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.delayTimer?.timer.cancel();
    this.delayTimer = undefined;
    this.delayed.clear();
    for (const resolve of this.getters.splice(0)) resolve(undefined);
    this.notifyIfIdle();
  }

  /** Shuts down, then resolves once every key handed out has been marked done. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    return this.whenIdle();
  }

  private enqueue(key: K): void {
    const getter = this.getters.shift();
    // A waiting worker takes the key at once: no window in which the key is neither queued nor held.
    if (getter) getter(this.handOut(key));
    else this.queue.push(key);
  }

  private handOut(key: K): K {
    this.processing.add(key);
    this.dirty.delete(key);
    const since = this.pendingSince.get(key);
    this.pendingSince.delete(key);
    if (since !== undefined) this.events.onQueueLatency?.(key, this.clock.now() - since);
    this.events.onDepth?.(this.dirty.size);
    return key;
  }

  private isIdle(): boolean {
    return this.processing.size === 0 && (this.shuttingDown || this.queue.length === 0);
  }

  private notifyIfIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  private armDelayTimer(): void {
    const due = this.delayed.nextDue();
    if (due === this.delayTimer?.due) return;
    this.delayTimer?.timer.cancel();
    this.delayTimer = undefined;
    if (due === undefined) return;
    const timer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => this.releaseDue());
    this.delayTimer = { timer, due };
  }

  private releaseDue(): void {
    this.delayTimer = undefined;
    for (const key of this.delayed.takeDue(this.clock.now())) this.add(key);
    // A real timer can fire a hair early; re-arming covers that as well as the next delayed key.
    this.armDelayTimer();
  }
}
