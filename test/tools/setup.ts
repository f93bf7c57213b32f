// The tools the observability tests run, installed or built when missing:
//   - Debian's `prometheus` (prometheus and promtool), `lua5.1` (the Lua dialect Argo CD embeds) and
//     `chromium` (the console's browser tests drive it with playwright-core; no browser is downloaded),
//     installed with apt-get when their commands are missing (as root, non-interactive);
//   - kstatus (./kstatus, the library Flux's health checks use), built from the Go module proxy into
//     ${XDG_CACHE_HOME:-$HOME/.cache}/vireo/kstatus/<cli-utils version>/ and reused from there;
//   - kube-score (./kube-score, the linter the deployment tests run on the chart and the manifests), built
//     the same way into ${XDG_CACHE_HOME:-$HOME/.cache}/vireo/kube-score/<kube-score version>/.
// Once built, a tool is never rebuilt nor fetched again: the tests run offline from the cache.

import { spawn, spawnSync } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, readFile, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** A command built from a Go module of its own under test/tools, cached by the version of what it builds. */
interface GoTool {
  name: string;
  /** The directory of its go.mod. */
  module: string;
  /** The required module whose version names the cache directory. */
  requirement: string;
  /** What `go build` builds: "." or a package of the requirement. */
  target: string;
  /** -ldflags for a version the command prints, given the requirement's version. */
  ldflags?: (version: string) => string;
}

const KSTATUS: GoTool = { name: "kstatus", module: join(import.meta.dirname, "kstatus"), requirement: "sigs.k8s.io/cli-utils", target: "." };
const KUBE_SCORE: GoTool = {
  name: "kube-score",
  module: join(import.meta.dirname, "kube-score"),
  requirement: "github.com/zegl/kube-score",
  target: "github.com/zegl/kube-score/cmd/kube-score",
  ldflags: (version) => `-X main.version=${version}`,
};

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

async function requiredVersion(tool: GoTool): Promise<string> {
  const gomod = await readFile(join(tool.module, "go.mod"), "utf8");
  const escaped = tool.requirement.replaceAll(".", "\\.");
  const version = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(gomod)?.[1];
  if (!version) throw new Error(`cannot find the ${tool.requirement} requirement in ${join(tool.module, "go.mod")}`);
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

/** The command of a Go tool, built into the cache when it is not there yet. */
async function ensureGoTool(tool: GoTool): Promise<string> {
  const base = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  const version = await requiredVersion(tool);
  const dir = join(base, "vireo", tool.name, version);
  const binary = join(dir, tool.name);
  if (await executable(binary)) return binary;
  const go = commandPath("go") ?? ((await executable("/usr/local/go/bin/go")) ? "/usr/local/go/bin/go" : undefined);
  if (!go) throw new Error(`the go toolchain is needed to build test/tools/${tool.name}, and \`go\` is not on PATH`);
  await mkdir(dir, { recursive: true });
  // Build beside the target and rename: a concurrent build wastes time but never leaves half a binary.
  const tmp = join(dir, `.${tool.name}.tmp-${process.pid}`);
  log(`building ${tool.name} (${tool.requirement} ${version}) into ${dir}`);
  const ldflags = tool.ldflags ? ["-ldflags", tool.ldflags(version)] : [];
  try {
    await run(go, ["build", "-o", tmp, ...ldflags, tool.target], { cwd: tool.module, env: { ...process.env, CGO_ENABLED: "0" } });
    await rename(tmp, binary);
  } finally {
    await rm(tmp, { force: true });
  }
  return binary;
}

/** The kstatus command (./kstatus), built into the cache when it is not there yet. */
export function ensureKstatus(): Promise<string> {
  return ensureGoTool(KSTATUS);
}

/** The kube-score command (./kube-score), built into the cache when it is not there yet. */
export function ensureKubeScore(): Promise<string> {
  return ensureGoTool(KUBE_SCORE);
}

/** Everything the observability, console and deployment tests need. */
export async function ensureObservabilityTools(): Promise<void> {
  await ensureDebianPackages();
  log(`kstatus: ${await ensureKstatus()}`);
  log(`kube-score: ${await ensureKubeScore()}`);
}
