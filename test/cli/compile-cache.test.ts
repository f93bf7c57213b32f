// The image fills Node's compile cache when it is built (controller/cli/compile-cache.ts): a `vireo`
// started with that cache finds every module's stripped TypeScript there, so it never loads Node's
// TypeScript stripper, whatever command it runs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { REPO, tempDir } from "../support/process.ts";

function node(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: REPO, env: { ...process.env, ...env }, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`node ${args.join(" ")}: ${stderr}`, { cause: error }));
      else resolve({ stdout, stderr });
    });
  });
}

test("with the cache the image is built with, vireo strips no TypeScript itself: the entry, the API mode, the file mode, hostsim", async () => {
  const cache = tempDir("compile-cache");
  try {
    const env = { NODE_COMPILE_CACHE: cache.path, NODE_OPTIONS: "--max-semi-space-size=4" };
    const filled = await node([join(REPO, "controller", "cli", "compile-cache.ts")], env);
    assert.match(filled.stdout, /compile-cache: \d+ modules in /);

    const traced = { ...env, NODE_DEBUG_NATIVE: "COMPILE_CACHE" };
    const version = await node([join(REPO, "controller", "cli", "vireo.ts"), "version"], traced);
    const commands = ["run-kube.ts", "run.ts", "hostsim.ts"].map((file) => `await import(${JSON.stringify(join(REPO, "controller", "cli", file))});`).join(" ");
    const loaded = await node(["--input-type=module", "-e", `${commands} await import(${JSON.stringify(join(REPO, "controller", "engine", "leader.ts"))});`], traced);
    for (const run of [version, loaded]) {
      assert.match(run.stderr, /retrieving transpile cache for StrippedTypeScript/, "the cache was read");
      assert.doesNotMatch(run.stderr, /no transpile cache for StrippedTypeScript/);
    }
  } finally {
    cache.remove();
  }
});
