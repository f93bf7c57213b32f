// Runs the tests on a deliberately busy machine, as a laptop doing other work or a shared CI runner is: a CPU
// hog (a Node busy loop) on every core, the suite next to them as `npm test` runs it, and the hogs killed
// however the run ends. A test that passes only on a quiet machine has a race or a deadline to fix.
//
//   node test/loaded.ts                          the whole suite (npm run test:loaded)
//   node test/loaded.ts test/e2e/*.test.ts       some files
//   VIREO_LOAD_HOGS=4 node test/loaded.ts        another number of hogs (default: one per core)

import { spawn, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";

const REPO = join(import.meta.dirname, "..");
const count = Number(process.env["VIREO_LOAD_HOGS"] ?? availableParallelism());
const files = process.argv.slice(2);

// Each hog spins, and every so often checks that this process is still its parent: if this one is killed
// outright (SIGKILL), the hogs are orphaned and end by themselves.
const HOG = `const parent = ${process.pid}; for (let i = 1; ; i++) if (i % 20_000_000 === 0 && process.ppid !== parent) process.exit(0);`;
const hogs: ChildProcess[] = Array.from({ length: count }, () => spawn(process.execPath, ["-e", HOG], { stdio: "ignore" }));

function killHogs(): void {
  for (const hog of hogs) if (hog.exitCode === null && hog.signalCode === null) hog.kill("SIGKILL");
}
process.on("exit", killHogs);

console.log(`[loaded] ${count} CPU hog(s) running (pids ${hogs.map((h) => h.pid).join(" ")}); the tests run next to them`);
const suite = spawn(process.execPath, ["--test", "--test-concurrency=2", ...(files.length > 0 ? files : ["test/**/*.test.ts"])], { cwd: REPO, stdio: "inherit" });

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    killHogs();
    suite.kill(signal);
  });
}

suite.once("exit", (code, signal) => {
  killHogs();
  console.log(`[loaded] tests ${code === 0 ? "passed" : `failed (${signal ?? `exit ${code}`})`} under load; hogs stopped`);
  process.exit(code ?? 1);
});
