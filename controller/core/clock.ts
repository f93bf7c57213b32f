// One injected clock for the controller and the simulator alike. Nothing in Vireo reads Date.now() or
// calls setTimeout directly: tests and `vireo simulate` use VirtualClock, which jumps from timer to timer.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch, as this clock sees it. */
  now(): number;
  /** Runs `fn` once `ms` of this clock's time have passed. */
  setTimer(ms: number, fn: () => void): Timer;
  /** Resolves after `ms` of this clock's time. */
  sleep(ms: number): Promise<void>;
}

export function isoTime(clock: Clock): string {
  return new Date(clock.now()).toISOString();
}

/**
 * Wall-clock time, optionally sped up: with scale 10, one real second is ten seconds of Vireo time.
 * A sped-up clock runs ahead of the wall clock; `resumeFrom` lets a restarted process carry on from the
 * time its state was saved at, so time never runs backwards across restarts.
 */
export class RealClock implements Clock {
  private readonly origin = Date.now();
  private readonly start: number;
  private readonly scale: number;

  constructor(scale = 1, resumeFrom = 0) {
    if (!(scale > 0)) throw new RangeError(`time scale must be positive, got ${scale}`);
    this.scale = scale;
    this.start = Math.max(this.origin, resumeFrom);
  }

  now(): number {
    if (this.scale === 1 && this.start === this.origin) return Date.now();
    return Math.round(this.start + (Date.now() - this.origin) * this.scale);
  }

  setTimer(ms: number, fn: () => void): Timer {
    return scaledTimer(ms, this.scale, fn);
  }

  sleep(ms: number): Promise<void> {
    return scaledSleep(ms, this.scale);
  }
}

/** A wall-clock timer for `ms` of a clock that runs `scale` times faster than real time. */
export function scaledTimer(ms: number, scale: number, fn: () => void): Timer {
  const handle = setTimeout(fn, Math.max(0, ms / scale));
  handle.unref?.();
  return { cancel: () => clearTimeout(handle) };
}

export function scaledSleep(ms: number, scale: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, Math.max(0, ms / scale));
  });
}

interface PendingTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to. Timers fire in (time, creation) order, so the same inputs give
 * the same run. `advanceTo` fires every timer due up to a time, letting promises settle between timers.
 */
export class VirtualClock implements Clock {
  private current: number;
  private seq = 0;
  private timers: PendingTimer[] = [];

  constructor(start = Date.parse("2026-01-01T00:00:00Z")) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const timer: PendingTimer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.insert(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => { this.setTimer(ms, resolve); });
  }

  /** When the next live timer is due, or undefined when none is pending. */
  nextTimerAt(): number | undefined {
    this.dropCancelled();
    return this.timers[0]?.at;
  }

  pendingTimers(): number {
    this.dropCancelled();
    return this.timers.length;
  }

  /** Fires the next due timer (moving time to it) and returns true, or false when none is due by `limit`. */
  fireNext(limit = Number.POSITIVE_INFINITY): boolean {
    this.dropCancelled();
    const next = this.timers[0];
    if (!next || next.at > limit) return false;
    this.timers.shift();
    this.current = Math.max(this.current, next.at);
    next.fn();
    return true;
  }

  /** Moves time to `at`, firing every timer due on the way and letting promises settle after each. */
  async advanceTo(at: number): Promise<void> {
    await settle();
    while (this.fireNext(at)) await settle();
    this.current = Math.max(this.current, at);
    await settle();
  }

  advance(ms: number): Promise<void> {
    return this.advanceTo(this.current + ms);
  }

  private insert(timer: PendingTimer): void {
    // Binary search keeps the list sorted by (at, seq); timers are few and mostly appended.
    let lo = 0;
    let hi = this.timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const t = this.timers[mid]!;
      if (t.at < timer.at || (t.at === timer.at && t.seq < timer.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.timers.splice(lo, 0, timer);
  }

  private dropCancelled(): void {
    while (this.timers[0]?.cancelled) this.timers.shift();
  }
}

/** Lets every pending promise callback run: several macrotask turns, enough for chains of awaits. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
