import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../controller/core/clock.ts";
import {
  BucketRateLimiter,
  defaultControllerRateLimiter,
  ExponentialFailureRateLimiter,
  maxOfRateLimiters,
  TokenBucket,
  withJitter,
} from "../../controller/engine/ratelimit.ts";
import { seededRandom } from "../support/random.ts";


describe("ExponentialFailureRateLimiter", () => {
  it("doubles the delay from 5 ms with each failure and stops at the 1000 s cap", () => {
    const limiter = new ExponentialFailureRateLimiter<string>();
    const delays = Array.from({ length: 22 }, () => limiter.when("vm/a"));
    assert.deepEqual(delays.slice(0, 5), [5, 10, 20, 40, 80]);
    // 5 ms · 2^17 = 655.36 s is the last step under the cap; 2^18 would be 1310.72 s.
    assert.equal(delays[17], 655_360);
    assert.deepEqual(delays.slice(18), [1_000_000, 1_000_000, 1_000_000, 1_000_000]);
    assert.equal(limiter.numRequeues("vm/a"), 22);
  });

  it("keeps the cap after so many failures that the exponent overflows", () => {
    const limiter = new ExponentialFailureRateLimiter<string>({ baseDelayMs: 1, maxDelayMs: 60_000 });
    let last = 0;
    for (let i = 0; i < 1200; i++) last = limiter.when("vm/a");
    assert.equal(last, 60_000);
  });

  it("counts failures per key, and forget starts a key again from the base delay", () => {
    const limiter = new ExponentialFailureRateLimiter<string>({ baseDelayMs: 100, maxDelayMs: 10_000, factor: 3 });
    assert.deepEqual([limiter.when("a"), limiter.when("a"), limiter.when("a")], [100, 300, 900]);
    assert.equal(limiter.when("b"), 100);
    limiter.forget("a");
    assert.equal(limiter.numRequeues("a"), 0);
    assert.equal(limiter.when("a"), 100);
    assert.equal(limiter.numRequeues("b"), 1);
  });

  it("rejects a cap below the base delay", () => {
    assert.throws(() => new ExponentialFailureRateLimiter({ baseDelayMs: 10, maxDelayMs: 5 }), RangeError);
  });
});

describe("TokenBucket", () => {
  it("allows a burst at once, then one take per 1/qps seconds", async () => {
    const clock = new VirtualClock();
    const start = clock.now();
    const bucket = new TokenBucket({ qps: 10, burst: 100, clock });
    const grantedAt: number[] = [];
    const takes = Array.from({ length: 103 }, () => bucket.take().then(() => grantedAt.push(clock.now() - start)));
    await clock.advance(0);
    assert.equal(grantedAt.length, 100);
    assert.ok(grantedAt.every((t) => t === 0));
    await clock.advance(99);
    assert.equal(grantedAt.length, 100, "the 101st take waits a full 100 ms");
    await clock.advance(1);
    assert.equal(grantedAt.length, 101);
    await clock.advance(200);
    await Promise.all(takes);
    assert.deepEqual(grantedAt.slice(100), [100, 200, 300]);
  });

  it("refills while unused but never beyond the burst", async () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket({ qps: 2, burst: 3, clock });
    assert.deepEqual([bucket.tryTake(), bucket.tryTake(), bucket.tryTake(), bucket.tryTake()], [true, true, true, false]);
    await clock.advance(500);
    assert.equal(bucket.tryTake(), true);
    assert.equal(bucket.tryTake(), false);
    await clock.advance(60_000);
    assert.equal(bucket.available(), 3);
  });

  it("makes reservations queue up: each caller is told a later time than the one before", () => {
    const clock = new VirtualClock();
    const bucket = new TokenBucket({ qps: 4, burst: 1, clock });
    assert.deepEqual([bucket.reserve(), bucket.reserve(), bucket.reserve()], [0, 250, 500]);
    assert.equal(bucket.available(), -2);
  });

  it("rejects a rate or burst that could never grant a token", () => {
    const clock = new VirtualClock();
    assert.throws(() => new TokenBucket({ qps: 0, burst: 1, clock }), RangeError);
    assert.throws(() => new TokenBucket({ qps: 1, burst: 0, clock }), RangeError);
  });
});

describe("withJitter", () => {
  it("adds between 0 and the jitter fraction to every delay, spread over that range", () => {
    const limiter = withJitter(new ExponentialFailureRateLimiter<string>({ baseDelayMs: 1000, maxDelayMs: 1000 }), 0.1, seededRandom(42));
    const delays = Array.from({ length: 500 }, (_, i) => limiter.when(`vm/${i}`));
    for (const delay of delays) assert.ok(delay >= 1000 && delay < 1100, `delay ${delay} outside [1000, 1100)`);
    assert.ok(Math.min(...delays) < 1010, "some delays land near the bottom of the range");
    assert.ok(Math.max(...delays) > 1090, "some delays land near the top of the range");
  });

  it("is the same for the same seed", () => {
    const run = () => {
      const limiter = withJitter(new ExponentialFailureRateLimiter<string>(), 0.1, seededRandom(7));
      return Array.from({ length: 10 }, () => limiter.when("vm/a"));
    };
    assert.deepEqual(run(), run());
  });

  it("jitters a delay at the cap too, so keys stuck at the cap do not retry in step", () => {
    const limiter = withJitter(new ExponentialFailureRateLimiter<string>({ baseDelayMs: 10, maxDelayMs: 10 }), 0.5, () => 0.5);
    assert.equal(limiter.when("a"), 12.5);
  });
});

describe("defaultControllerRateLimiter", () => {
  it("backs off per key while the overall bucket has tokens", () => {
    const clock = new VirtualClock();
    const limiter = defaultControllerRateLimiter<string>(clock, { jitter: 0 });
    assert.deepEqual([limiter.when("a"), limiter.when("a"), limiter.when("a")], [5, 10, 20]);
    assert.equal(limiter.numRequeues("a"), 3);
    limiter.forget("a");
    assert.equal(limiter.numRequeues("a"), 0);
    assert.equal(limiter.when("a"), 5);
  });

  it("spaces retries at 10 per second once a storm of failures has used up the burst of 100", () => {
    const clock = new VirtualClock();
    const limiter = defaultControllerRateLimiter<string>(clock, { jitter: 0 });
    const delays = Array.from({ length: 103 }, (_, i) => limiter.when(`vm/${i}`));
    assert.ok(delays.slice(0, 100).every((d) => d === 5), "within the burst the per-key 5 ms wins");
    assert.deepEqual(delays.slice(100), [100, 200, 300]);
  });

  it("applies the configured figures and jitter from the injected random", () => {
    const clock = new VirtualClock();
    const limiter = defaultControllerRateLimiter<string>(clock, { baseDelayMs: 50, maxDelayMs: 200, jitter: 0.2, random: () => 1 });
    assert.deepEqual([limiter.when("a"), limiter.when("a"), limiter.when("a"), limiter.when("a")], [60, 120, 240, 240]);
  });

  it("combines limiters by taking the longest delay and the highest failure count", () => {
    const clock = new VirtualClock();
    const bucket = new BucketRateLimiter<string>(new TokenBucket({ qps: 1, burst: 1, clock }));
    const limiter = maxOfRateLimiters(new ExponentialFailureRateLimiter<string>({ baseDelayMs: 10 }), bucket);
    assert.deepEqual([limiter.when("a"), limiter.when("b")], [10, 1000]);
    assert.equal(limiter.numRequeues("a"), 1);
  });
});
