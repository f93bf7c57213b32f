// The controller's clock on the simulator's timeline: it runs at the provider's scale between exchanges,
// follows every re-anchoring, and never runs backwards. Local time is injected, so nothing here waits.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProviderClock, connectProviderClock } from "../../../controller/provider/http/synced-clock.ts";
import type { ProviderTime } from "../../../controller/provider/http/synced-clock.ts";

function localTime(start = 1_000) {
  let now = start;
  return { now: () => now, pass: (ms: number) => { now += ms; } };
}

const T0 = Date.parse("2026-06-01T00:00:00Z");

describe("ProviderClock", () => {
  it("starts at the provider's time and runs at the provider's scale", () => {
    const local = localTime();
    const clock = new ProviderClock({ now: T0, timeScale: 50 }, { localNow: local.now });
    assert.equal(clock.now(), T0);
    local.pass(20);
    assert.equal(clock.now(), T0 + 1_000);
    assert.equal(clock.timeScale, 50);
  });

  it("stands still once it has run its limit past the provider's last word, until the provider speaks again", () => {
    const local = localTime();
    const clock = new ProviderClock({ now: T0, timeScale: 10 }, { localNow: local.now, maxAheadMs: 2_000 });
    local.pass(150);
    assert.equal(clock.now(), T0 + 1_500);
    local.pass(10_000);
    assert.equal(clock.now(), T0 + 2_000, "a controller that hears nothing does not age the heartbeats it last saw");
    clock.sync(T0 + 100_000);
    assert.equal(clock.now(), T0 + 100_000);
    local.pass(100);
    assert.equal(clock.now(), T0 + 101_000);
  });

  it("jumps forward to a provider that is ahead of it", () => {
    const local = localTime();
    const clock = new ProviderClock({ now: T0, timeScale: 1 }, { localNow: local.now, maxAheadMs: 60_000 });
    local.pass(10);
    clock.sync(T0 + 60_000);
    assert.equal(clock.now(), T0 + 60_000);
    local.pass(10);
    assert.equal(clock.now(), T0 + 60_010);
  });

  it("holds still for a provider that is behind it, until the provider catches up, never running backwards", () => {
    const local = localTime();
    const clock = new ProviderClock({ now: T0, timeScale: 10 }, { localNow: local.now, maxAheadMs: 60_000 });
    local.pass(1_000);
    assert.equal(clock.now(), T0 + 10_000);
    // The provider restarted and lost two seconds of its time.
    clock.sync(T0 + 8_000);
    assert.equal(clock.now(), T0 + 10_000);
    local.pass(100);
    assert.equal(clock.now(), T0 + 10_000, "still holding: the provider is at 9 s");
    local.pass(300);
    assert.equal(clock.now(), T0 + 12_000, "following the provider again");
  });

  it("takes the time at the middle of the exchange it was read in, and a new scale", () => {
    const local = localTime();
    const clock = new ProviderClock({ now: T0, timeScale: 1 }, { localNow: local.now });
    local.pass(40);
    clock.sync(T0 + 1_000, { localAt: local.now() - 20, timeScale: 2 });
    assert.equal(clock.now(), T0 + 1_040);
    assert.equal(clock.timeScale, 2);
  });

  it("refuses a scale that is not positive and a time that is not a number", () => {
    assert.throws(() => new ProviderClock({ now: T0, timeScale: 0 }), RangeError);
    const clock = new ProviderClock({ now: T0, timeScale: 1 });
    assert.throws(() => clock.sync(Number.NaN), RangeError);
    assert.throws(() => clock.sync(T0, { timeScale: -1 }), RangeError);
  });

  it("fires timers after the provider's time has passed, at its scale", async () => {
    const clock = new ProviderClock({ now: T0, timeScale: 1_000 });
    const fired = await new Promise<boolean>((resolve) => { clock.setTimer(50, () => resolve(true)); });
    assert.equal(fired, true);
    await clock.sleep(100);
  });
});

describe("connectProviderClock", () => {
  function source(answers: Array<ProviderTime | Error>) {
    const listeners: Array<(time: ProviderTime, localAt: number) => void> = [];
    let calls = 0;
    return {
      calls: () => calls,
      tell: (time: ProviderTime) => { for (const listener of listeners) listener(time, performance.now()); },
      clock: async () => {
        const answer = answers[Math.min(calls++, answers.length - 1)]!;
        if (answer instanceof Error) throw answer;
        return answer;
      },
      onProviderTime: (listener: (time: ProviderTime, localAt: number) => void) => {
        listeners.push(listener);
        return () => undefined;
      },
    };
  }

  it("retries while the provider cannot be reached, then follows every time it reports", async () => {
    const provider = source([new Error("connection refused"), { now: T0, timeScale: 5 }]);
    const retries: number[] = [];
    const clock = await connectProviderClock(provider, { onRetry: (_error, attempt) => retries.push(attempt) });
    assert.deepEqual(retries, [1]);
    assert.equal(clock.timeScale, 5);
    provider.tell({ now: T0 + 3_600_000, timeScale: 5 });
    assert.ok(clock.now() >= T0 + 3_600_000);
  });

  it("gives up at once on a fatal error", async () => {
    const refused = new Error("401");
    const provider = source([refused]);
    await assert.rejects(connectProviderClock(provider, { isFatal: (error) => error === refused }), /401/);
    assert.equal(provider.calls(), 1);
  });
});
