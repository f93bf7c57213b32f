// Fills Node's compile cache (the directory NODE_COMPILE_CACHE names) with every module of controller/:
// the image runs it once, as the user the controller runs as, when it is built. Node strips TypeScript's
// types with a WebAssembly build of swc, loaded at the first .ts file it has no cached result for and held
// for the life of the process: about 30 MiB of the API mode's resident memory at rest
// (docs/decisions/0013). With every file's stripped form in the cache, it is never loaded.
//
//   NODE_COMPILE_CACHE=DIR node controller/cli/compile-cache.ts

import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { flushCompileCache } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const CONTROLLER = join(import.meta.dirname, "..");
/** The entry point runs its command when imported: it is run (as `vireo version`) instead. */
const ENTRY = join(CONTROLLER, "cli", "vireo.ts");
/** This file is cached as it runs; importing itself would wait on its own top-level await. */
const SELF = import.meta.filename;

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modules(path);
    return entry.name.endsWith(".ts") && path !== ENTRY && path !== SELF ? [path] : [];
  }).sort();
}

if (!process.env["NODE_COMPILE_CACHE"]) {
  console.error("compile-cache: set NODE_COMPILE_CACHE to the directory to fill");
  process.exit(2);
}
// The entry is cached as a main module is loaded, which an import is not.
execFileSync(process.execPath, [ENTRY, "version"], { stdio: "ignore" });
const files = modules(CONTROLLER);
for (const file of files) await import(pathToFileURL(file).href);
flushCompileCache();
console.log(`compile-cache: ${files.length + 2} modules in ${process.env["NODE_COMPILE_CACHE"]}`);
