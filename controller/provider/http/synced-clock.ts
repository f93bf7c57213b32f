// The controller's clock when the simulated hosts run in another process: the simulator's timeline, so
// heartbeat ages are judged on the clock the heartbeats were stamped with, even when both processes run
// sped up or the simulator restarts. Every observation re-anchors it; in between it runs at the
// simulator's scale on the local monotonic clock — but only so far past the last one: a controller that
// cannot reach the simulator learns nothing, and its time stands still rather than age every heartbeat
// into a false host failure (the controller is the one cut off, as a vSphere HA host that hears no one
// declares itself isolated rather than everyone else dead).

import type { Clock, Timer } from "../../core/clock.ts";
import { scaledSleep, scaledTimer } from "../../core/clock.ts";

export interface ProviderTime {
  /** The provider's clock, ms since the epoch. */
  now: number;
  timeScale: number;
}

/**
 * How far (provider ms) the clock runs past the last time the provider told. Below the smallest failure
 * detection time (5 s, the HostCluster CRD's minimum) less a heartbeat interval and an observation interval
 * (1 s each), so a blind controller never sees a heartbeat age into a failure.
 */
export const DEFAULT_MAX_AHEAD_MS = 2_000;

export interface ProviderClockOptions {
  /** Local monotonic time in ms (performance.now by default); tests pass their own. */
  localNow?: () => number;
  /** How far past the provider's last word the clock may run; default DEFAULT_MAX_AHEAD_MS. */
  maxAheadMs?: number;
}

export class ProviderClock implements Clock {
  private readonly localNow: () => number;
  private readonly maxAheadMs: number;
  private providerAt: number;
  private localAt: number;
  private scale: number;
  /** The last time handed out: now() never returns less, whatever the provider says. */
  private last = Number.NEGATIVE_INFINITY;

  constructor(start: ProviderTime, options: ProviderClockOptions = {}) {
    checkScale(start.timeScale);
    this.localNow = options.localNow ?? (() => performance.now());
    this.maxAheadMs = options.maxAheadMs ?? DEFAULT_MAX_AHEAD_MS;
    this.providerAt = start.now;
    this.localAt = this.localNow();
    this.scale = start.timeScale;
  }

  get timeScale(): number {
    return this.scale;
  }

  now(): number {
    const elapsed = Math.max(0, (this.localNow() - this.localAt) * this.scale);
    const estimate = Math.round(this.providerAt + Math.min(elapsed, this.maxAheadMs));
    // A provider behind our estimate (jitter, or a restart that lost a little time) makes the clock hold
    // still until the provider catches up; it never runs backwards.
    if (estimate > this.last) this.last = estimate;
    return this.last;
  }

  /**
   * The provider's clock read `providerNow` at local time `localAt` (for an HTTP exchange, the middle of
   * the round trip). From now on the clock follows the provider from there.
   */
  sync(providerNow: number, options: { localAt?: number; timeScale?: number } = {}): void {
    if (!Number.isFinite(providerNow)) throw new RangeError(`provider time must be a number of ms, got ${providerNow}`);
    if (options.timeScale !== undefined) {
      checkScale(options.timeScale);
      this.scale = options.timeScale;
    }
    this.providerAt = providerNow;
    this.localAt = options.localAt ?? this.localNow();
  }

  setTimer(ms: number, fn: () => void): Timer {
    return scaledTimer(ms, this.scale, fn);
  }

  sleep(ms: number): Promise<void> {
    return scaledSleep(ms, this.scale);
  }
}

function checkScale(scale: number): void {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`time scale must be a positive number, got ${scale}`);
}

/** What the clock needs from the HTTP provider: its clock, and word of its time after every exchange. */
export interface ProviderTimeSource {
  clock(): Promise<ProviderTime>;
  onProviderTime(listener: (time: ProviderTime, localAt: number) => void): () => void;
}

export interface ConnectOptions {
  /** How long to keep trying while the provider is unreachable (it may be starting too); default 60 s. */
  patienceMs?: number;
  /** Told of each failed attempt before the next. */
  onRetry?: (error: Error, attempt: number) => void;
  /** Errors not worth retrying (a refused token); by default every error is retried. */
  isFatal?: (error: Error) => boolean;
}

/**
 * A ProviderClock following `source`: read from the provider's clock, then re-anchored by every
 * observation. Retries with backoff while the provider cannot be reached, up to `patienceMs`.
 */
export async function connectProviderClock(source: ProviderTimeSource, options: ConnectOptions = {}): Promise<ProviderClock> {
  const deadline = Date.now() + (options.patienceMs ?? 60_000);
  for (let attempt = 1; ; attempt++) {
    try {
      const clock = new ProviderClock(await source.clock());
      source.onProviderTime((time, localAt) => clock.sync(time.now, { localAt, timeScale: time.timeScale }));
      return clock;
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      if (options.isFatal?.(failure) || Date.now() >= deadline) throw failure;
      options.onRetry?.(failure, attempt);
      await new Promise((resolve) => setTimeout(resolve, Math.min(200 * 2 ** (attempt - 1), 5_000)));
    }
  }
}
