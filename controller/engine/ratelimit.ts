// Rate limiting for retries and for outgoing calls, after k8s.io/client-go/util/workqueue's rate limiters
// and golang.org/x/time/rate's token bucket. All waiting goes through the injected Clock and all jitter
// through an injected random source, so a VirtualClock and a seeded random give the same run every time.

import type { Clock } from "../core/clock.ts";

/** Decides how long a key waits before its next attempt. Delays are in milliseconds. */
export interface RateLimiter<K> {
  /** The delay before `key` may be retried; counts as one more failure of `key`. */
  when(key: K): number;
  /** Stops tracking `key`: its next failure starts again from the smallest delay. */
  forget(key: K): void;
  /** How many times `key` has failed since it was last forgotten. */
  numRequeues(key: K): number;
}

export interface ExponentialBackoffOptions {
  /** Delay after the first failure. client-go's DefaultControllerRateLimiter: 5 ms. */
  baseDelayMs?: number;
  /** Upper bound of the delay. client-go's DefaultControllerRateLimiter: 1000 s. */
  maxDelayMs?: number;
  /** Growth per consecutive failure; 2 doubles the delay each time. */
  factor?: number;
}

export const DEFAULT_BASE_DELAY_MS = 5;
export const DEFAULT_MAX_DELAY_MS = 1_000_000;
export const DEFAULT_QPS = 10;
export const DEFAULT_BURST = 100;
/** Up to +10% on each delay, so keys that failed together do not all retry in the same instant. */
export const DEFAULT_JITTER = 0.1;

/** Per-key exponential backoff: base, base·factor, base·factor², … up to the cap. */
export class ExponentialFailureRateLimiter<K> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly factor: number;

  constructor(options: ExponentialBackoffOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.factor = options.factor ?? 2;
    if (!(this.baseDelayMs >= 0)) throw new RangeError(`baseDelayMs must be >= 0, got ${this.baseDelayMs}`);
    if (!(this.maxDelayMs >= this.baseDelayMs)) {
      throw new RangeError(`maxDelayMs must be >= baseDelayMs, got ${this.maxDelayMs} < ${this.baseDelayMs}`);
    }
    if (!(this.factor >= 1)) throw new RangeError(`factor must be >= 1, got ${this.factor}`);
  }

  when(key: K): number {
    const previousFailures = this.failures.get(key) ?? 0;
    this.failures.set(key, previousFailures + 1);
    const delay = this.baseDelayMs * this.factor ** previousFailures;
    // factor ** n overflows to Infinity after ~1000 failures; the cap still holds.
    return Number.isFinite(delay) ? Math.min(delay, this.maxDelayMs) : this.maxDelayMs;
  }

  forget(key: K): void {
    this.failures.delete(key);
  }

  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }
}

export interface TokenBucketOptions {
  /** Tokens added per second of clock time. */
  qps: number;
  /** Most tokens the bucket holds; also how many it starts with. */
  burst: number;
  clock: Clock;
}

/**
 * A token bucket with reservations, as golang.org/x/time/rate: a caller takes a token now and is told how
 * long to wait for it, so concurrent callers queue up fairly instead of racing for each refill. Starts full.
 */
export class TokenBucket {
  private readonly qps: number;
  private readonly burst: number;
  private readonly clock: Clock;
  private tokens: number;
  private refilledAt: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.qps > 0)) throw new RangeError(`qps must be > 0, got ${options.qps}`);
    if (!(options.burst >= 1)) throw new RangeError(`burst must be >= 1, got ${options.burst}`);
    this.qps = options.qps;
    this.burst = options.burst;
    this.clock = options.clock;
    this.tokens = options.burst;
    this.refilledAt = options.clock.now();
  }

  /** Takes a token and returns how many ms the caller must wait before using it (0 when one was free). */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    if (this.tokens >= 0) return 0;
    return (-this.tokens / this.qps) * 1000;
  }

  /** Takes a token only if one is free now. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Resolves once the caller may go ahead: at once within the burst, then at `qps` per second. */
  async take(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await this.clock.sleep(wait);
  }

  /** Tokens free now (negative while callers are waiting on reservations). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = this.clock.now();
    // A clock is not expected to go backwards; if it does, hand out nothing for the lost time.
    if (now > this.refilledAt) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.qps);
      this.refilledAt = now;
    }
  }
}

/** An overall limit shared by every key: however many keys fail at once, retries flow at `qps`. */
export class BucketRateLimiter<K> implements RateLimiter<K> {
  private readonly bucket: TokenBucket;

  constructor(bucket: TokenBucket) {
    this.bucket = bucket;
  }

  when(_key: K): number {
    return this.bucket.reserve();
  }

  forget(_key: K): void {
    // The bucket is shared by all keys: nothing is tracked per key.
  }

  numRequeues(_key: K): number {
    return 0;
  }
}

/** The strictest of several limiters: the longest delay, the highest failure count. */
export function maxOfRateLimiters<K>(...limiters: ReadonlyArray<RateLimiter<K>>): RateLimiter<K> {
  if (limiters.length === 0) throw new RangeError("maxOfRateLimiters needs at least one limiter");
  return {
    // Every limiter must see every failure (each keeps its own count), so no short-circuit here.
    when: (key) => Math.max(...limiters.map((limiter) => limiter.when(key))),
    forget: (key) => {
      for (const limiter of limiters) limiter.forget(key);
    },
    numRequeues: (key) => Math.max(...limiters.map((limiter) => limiter.numRequeues(key))),
  };
}

/**
 * Adds up to `fraction` of each delay at random (never less than the delay): with 0.1 a 1000 ms delay
 * becomes 1000–1100 ms. Applied after the cap, as in apimachinery's wait.Backoff, so that keys which
 * all reached the cap still spread out.
 */
export function withJitter<K>(limiter: RateLimiter<K>, fraction: number, random: () => number = Math.random): RateLimiter<K> {
  if (!(fraction >= 0)) throw new RangeError(`jitter fraction must be >= 0, got ${fraction}`);
  return {
    when: (key) => {
      const delay = limiter.when(key);
      return delay + delay * fraction * random();
    },
    forget: (key) => limiter.forget(key),
    numRequeues: (key) => limiter.numRequeues(key),
  };
}

export interface ControllerRateLimiterOptions extends ExponentialBackoffOptions {
  /** Overall retries per second across all keys. client-go: 10. */
  qps?: number;
  /** Retries allowed at once before `qps` applies. client-go: 100. */
  burst?: number;
  /** Largest random fraction added to each delay; 0 turns jitter off. */
  jitter?: number;
  random?: () => number;
}

/**
 * client-go's DefaultControllerRateLimiter — the larger of a per-key exponential backoff (5 ms doubling
 * to 1000 s) and an overall token bucket (10 qps, burst 100) — plus jitter, which client-go lacks.
 */
export function defaultControllerRateLimiter<K>(clock: Clock, options: ControllerRateLimiterOptions = {}): RateLimiter<K> {
  const perKey = new ExponentialFailureRateLimiter<K>(options);
  const overall = new BucketRateLimiter<K>(
    new TokenBucket({ qps: options.qps ?? DEFAULT_QPS, burst: options.burst ?? DEFAULT_BURST, clock }),
  );
  return withJitter(maxOfRateLimiters(perKey, overall), options.jitter ?? DEFAULT_JITTER, options.random);
}
