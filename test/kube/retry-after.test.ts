// How the client waits when the API server says "not now": Retry-After taken at its word (and capped), a
// server that cannot be reached waited out by reads and writes, lists left to their informer — all on a
// virtual clock, with requests that fail as the real server fails them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { VirtualClock } from "../../controller/core/clock.ts";
import { KubeClient, UNREACHABLE_WAIT_MS, type Verb } from "../../controller/sources/kube/client.ts";
import { ApiError } from "../../controller/sources/kube/transport.ts";
import { tempDir } from "../support/process.ts";

const dir = tempDir("retry-after");
const kubeconfig = join(dir.path, "kubeconfig");
writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n");
test.after(() => dir.remove());

function refused(code: number, retryAfterSeconds?: number): ApiError {
  return new ApiError("PATCH /apis/vireo.dev/v1alpha1/hosts/h1/status", { code, body: `{"kind":"Status","code":${code}}`, retryAfterSeconds });
}

function unreachable(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" });
}

/** A request that fails with each of `failures` in turn, then answers; and when each attempt was made. */
function flaky(clock: VirtualClock, failures: unknown[]): { request: () => Promise<string>; attempts: number[] } {
  const attempts: number[] = [];
  const start = clock.now();
  return {
    attempts,
    request: () => {
      attempts.push(clock.now() - start);
      const failure = failures.shift();
      return failure === undefined ? Promise.resolve("ok") : Promise.reject(failure);
    },
  };
}

async function run(verb: Verb, failures: unknown[], ms: number): Promise<{ outcome: unknown; attempts: number[] }> {
  const clock = new VirtualClock();
  const client = new KubeClient({ kubeconfig, clock });
  const { request, attempts } = flaky(clock, failures);
  let outcome: unknown = "pending";
  client.call(verb, "hosts/status", request).then((r) => { outcome = r; }, (e: unknown) => { outcome = e; });
  await clock.advance(ms);
  return { outcome, attempts };
}

test("a request answered 429 storage is (re)initializing, Retry-After: 1, is sent again a second later", async () => {
  const { outcome, attempts } = await run("list", [refused(429, 1), refused(429, 1)], 5_000);
  assert.equal(outcome, "ok");
  assert.deepEqual(attempts, [0, 1_000, 2_000]);
});

test("a 503 or 504 that names a Retry-After is retried after it, capped at 10 s; one that names none is the caller's", async () => {
  assert.deepEqual((await run("patch", [refused(503, 5)], 20_000)).attempts, [0, 5_000]);
  assert.deepEqual((await run("patch", [refused(504, 120)], 20_000)).attempts, [0, 10_000]);
  const plain = await run("patch", [refused(503)], 20_000);
  assert.deepEqual(plain.attempts, [0]);
  assert.equal((plain.outcome as ApiError).code, 503);
});

test("a 429 without Retry-After waits a second; a 409 or 422 is never retried", async () => {
  assert.deepEqual((await run("create", [refused(429)], 5_000)).attempts, [0, 1_000]);
  assert.deepEqual((await run("patch", [refused(409, 1)], 5_000)).attempts, [0]);
  assert.deepEqual((await run("patch", [refused(422)], 5_000)).attempts, [0]);
});

test("the server's word is taken ten times, then the error is the caller's", async () => {
  const { outcome, attempts } = await run("get", Array.from({ length: 11 }, () => refused(429, 1)), 60_000);
  assert.equal(attempts.length, 11);
  assert.equal((outcome as ApiError).code, 429);
});

test("a write that cannot reach the server is retried every 2 s at most until it can, for up to a minute", async () => {
  const { outcome, attempts } = await run("patch", Array.from({ length: 6 }, unreachable), 30_000);
  assert.equal(outcome, "ok");
  assert.deepEqual(attempts, [0, 250, 750, 1_750, 3_750, 5_750, 7_750]);
  const gaveUp = await run("patch", Array.from({ length: 100 }, unreachable), UNREACHABLE_WAIT_MS + 10_000);
  assert.equal((gaveUp.outcome as { code?: string }).code, "ECONNREFUSED");
  assert.ok(gaveUp.attempts.at(-1)! >= UNREACHABLE_WAIT_MS - 2_000 && gaveUp.attempts.at(-1)! <= UNREACHABLE_WAIT_MS + 2_000, `last attempt at ${gaveUp.attempts.at(-1)} ms`);
});

test("a list or watch that cannot reach the server fails at once: its informer re-lists on its own schedule", async () => {
  for (const verb of ["list", "watch"] as const) {
    const { outcome, attempts } = await run(verb, [unreachable()], 5_000);
    assert.deepEqual(attempts, [0], verb);
    assert.equal((outcome as { code?: string }).code, "ECONNREFUSED", verb);
  }
});

test("stopping ends every wait at once with the request's error, and later failures are not retried", async () => {
  const clock = new VirtualClock();
  const client = new KubeClient({ kubeconfig, clock });
  const { request, attempts } = flaky(clock, [unreachable(), unreachable()]);
  let outcome: unknown = "pending";
  client.call("patch", "hosts/status", request).then((r) => { outcome = r; }, (e: unknown) => { outcome = e; });
  await clock.advance(100);
  client.stopRetrying();
  await clock.advance(0);
  assert.equal((outcome as { code?: string }).code, "ECONNREFUSED");
  assert.deepEqual(attempts, [0]);
  await assert.rejects(client.call("patch", "hosts/status", flaky(clock, [refused(429, 1)]).request), ApiError);
});
