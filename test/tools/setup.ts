// The tools the observability tests run, installed or built when missing:
//   - Debian's `prometheus` (prometheus and promtool), `lua5.1` (the Lua dialect Argo CD embeds) and
//     `chromium` (the console's browser tests drive it with playwright-core; no browser is downloaded),
//     installed with apt-get when their commands are missing (as root, non-interactive);
//   - kstatus (./kstatus, the library Flux's health checks use), built from the Go module proxy into
//     ${XDG_CACHE_HOME:-$HOME/.cache}/vireo/kstatus/<cli-utils version>/ and reused from there.

import { spawn, spawnSync } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, readFile, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

const KSTATUS_MODULE = join(import.meta.dirname, "kstatus");

/** Debian package -> a command it installs. */
export const DEBIAN_PACKAGES: Readonly<Record<string, string>> = { prometheus: "promtool", "lua5.1": "lua5.1", chromium: "chromium" };

function log(msg: string): void {
  process.stderr.write(`[tools] ${msg}\n`);
}

export function commandPath(name: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function run(cmd: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", process.stderr, process.stderr] });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} failed: ${signal ?? `exit code ${code}`}`));
    });
  });
}

/** Installs the Debian packages whose command is missing; nothing when all are there. */
export async function ensureDebianPackages(packages: Readonly<Record<string, string>> = DEBIAN_PACKAGES): Promise<void> {
  const missing = Object.entries(packages).filter(([, command]) => !commandPath(command)).map(([pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`the tests need the Debian packages ${missing.join(", ")}: install them (apt-get install ${missing.join(" ")}) or run the set-up as root`);
  log(`installing ${missing.join(", ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-q"], { env });
  await run("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...missing], { env });
}

async function cliUtilsVersion(): Promise<string> {
  const gomod = await readFile(join(KSTATUS_MODULE, "go.mod"), "utf8");
  const version = /^\s*(?:require\s+)?sigs\.k8s\.io\/cli-utils\s+(v\S+)/m.exec(gomod)?.[1];
  if (!version) throw new Error(`cannot find the sigs.k8s.io/cli-utils requirement in ${join(KSTATUS_MODULE, "go.mod")}`);
  return version;
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

/** The kstatus command, built into the cache when it is not there yet. */
export async function ensureKstatus(): Promise<string> {
  const base = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  const dir = join(base, "vireo", "kstatus", await cliUtilsVersion());
  const binary = join(dir, "kstatus");
  if (await executable(binary)) return binary;
  const go = commandPath("go") ?? ((await executable("/usr/local/go/bin/go")) ? "/usr/local/go/bin/go" : undefined);
  if (!go) throw new Error("the go toolchain is needed to build test/tools/kstatus, and `go` is not on PATH");
  await mkdir(dir, { recursive: true });
  // Build beside the target and rename: a concurrent build wastes time but never leaves half a binary.
  const tmp = join(dir, `.kstatus.tmp-${process.pid}`);
  log(`building kstatus (sigs.k8s.io/cli-utils ${await cliUtilsVersion()}) into ${dir}`);
  try {
    await run(go, ["build", "-o", tmp, "."], { cwd: KSTATUS_MODULE, env: { ...process.env, CGO_ENABLED: "0" } });
    await rename(tmp, binary);
  } finally {
    await rm(tmp, { force: true });
  }
  return binary;
}

/** Everything the observability and console tests need. */
export async function ensureObservabilityTools(): Promise<void> {
  await ensureDebianPackages();
  const kstatus = await ensureKstatus();
  log(`kstatus: ${kstatus}`);
}
