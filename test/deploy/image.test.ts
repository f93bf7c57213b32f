// What the container image relies on, checked without Docker: the Dockerfile's final stage is rebuilt as a
// directory — runtime dependencies from `npm ci --omit=dev`, then exactly the files its COPY lines name — and
// `vireo` runs from there alone (its own node_modules, nothing of the checkout's). So nothing imported at run
// time may be a devDependency, and nothing it reads may be missing from the image.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { loadAll } from "js-yaml";
import type { VirtualMachine } from "../../controller/api/types.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { REPO, WAIT_MS, tempDir, waitForState } from "../support/process.ts";

const PACKAGE = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string; devDependencies: Record<string, string> };
const LOCK = JSON.parse(readFileSync(join(REPO, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean }> };

// ---- reading the Dockerfile ---------------------------------------------------------------------------

interface Instruction { op: string; args: string }
interface Stage { from: string; name?: string; instructions: Instruction[] }

/** Stages of a Dockerfile, with line continuations joined, comments dropped and ARG defaults substituted. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const args = new Map<string, string>();
  const substitute = (s: string): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a?: string, b?: string) => args.get((a ?? b)!) ?? whole);
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = "", rest = ""] = /^(\w+)\s*(.*)$/.exec(line) ?? [];
    const instruction = { op: op.toUpperCase(), args: rest.replace(/\s+/g, " ").trim() };
    if (instruction.op === "ARG") {
      const [name, value] = instruction.args.split("=", 2);
      if (value !== undefined || !args.has(name!)) args.set(name!, value ?? "");
    }
    if (instruction.op === "FROM") {
      const [from, as, name] = substitute(instruction.args).split(" ");
      stages.push({ from: from!, ...(as?.toUpperCase() === "AS" && name ? { name } : {}), instructions: [] });
      continue;
    }
    stages.at(-1)?.instructions.push({ op: instruction.op, args: substitute(instruction.args) });
  }
  return stages;
}

function all(stage: Stage, op: string): string[] {
  return stage.instructions.filter((i) => i.op === op).map((i) => i.args);
}

/** COPY [--from=X] [--chown=…] SRC… DEST */
function copies(stage: Stage): { from?: string; sources: string[]; dest: string }[] {
  return all(stage, "COPY").map((line) => {
    const words = line.split(" ");
    const flags = words.filter((w) => w.startsWith("--"));
    const paths = words.filter((w) => !w.startsWith("--"));
    const from = flags.find((f) => f.startsWith("--from="))?.slice("--from=".length);
    return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });
}

const DOCKERFILE = readFileSync(join(REPO, "Dockerfile"), "utf8");
const STAGES = parseDockerfile(DOCKERFILE);
const BUILD = STAGES.find((s) => s.name === "build")!;
const FINAL = STAGES.at(-1)!;
const WORKDIR = all(FINAL, "WORKDIR").at(-1)!;

// ---- running things -----------------------------------------------------------------------------------

interface Ran { code: number; stdout: string; stderr: string }

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
      resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}${error.message}` : stderr });
    });
  });
}

/**
 * npm, run by this Node (24) when it is a script: the system npm's shebang would otherwise pick whatever
 * `node` comes first on PATH. npm_execpath is set when the tests run under `npm test`.
 */
function npmCommand(): { cmd: string; prefix: string[] } {
  const fromNpm = process.env["npm_execpath"];
  const candidates = [
    ...(fromNpm && /npm-cli\.[cm]?js$/.test(fromNpm) ? [fromNpm] : []),
    ...(process.env["PATH"] ?? "").split(":").filter(Boolean).map((dir) => join(dir, "npm")),
  ];
  for (const candidate of candidates) {
    if (!existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    return /\.[cm]?js$/.test(real) ? { cmd: process.execPath, prefix: [real] } : { cmd: real, prefix: [] };
  }
  throw new Error("npm is not on PATH");
}

/** A filesystem laid out as the image's, from the build stage's npm ci and the final stage's COPY lines. */
async function buildImageTree(root: string): Promise<string> {
  const buildDir = join(root, "build");
  const appDir = join(root, "image", WORKDIR);
  mkdirSync(buildDir, { recursive: true });
  mkdirSync(appDir, { recursive: true });
  for (const copy of copies(BUILD)) for (const src of copy.sources) cpSync(join(REPO, src), join(buildDir, src));

  const npm = npmCommand();
  const env = { ...process.env, NODE_ENV: "production", npm_config_update_notifier: "false" };
  const installed = await run(npm.cmd, [...npm.prefix, "ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"], buildDir, env);
  assert.equal(installed.code, 0, `npm ci failed:\n${installed.stderr}${installed.stdout}`);

  const buildWorkdir = all(BUILD, "WORKDIR").at(-1)!;
  for (const copy of copies(FINAL)) {
    for (const src of copy.sources) {
      const from = copy.from === "build" ? join(buildDir, src.startsWith(buildWorkdir) ? src.slice(buildWorkdir.length) : src) : join(REPO, src);
      assert.equal(copy.from === undefined || copy.from === "build", true, `COPY --from=${copy.from} is understood`);
      const dest = copy.dest.startsWith("/") ? join(root, "image", copy.dest) : join(appDir, copy.dest);
      // As in Docker: a file copied to a path ending in "/" lands inside that directory.
      const intoDir = statSync(from).isFile() && (copy.dest.endsWith("/") || copy.dest === ".");
      cpSync(from, intoDir ? join(dest, basename(src)) : dest, { recursive: true });
    }
  }
  return appDir;
}

function vms(s: StateSnapshot): VirtualMachine[] {
  return s.objects.map((o) => o.object).filter((o): o is VirtualMachine => o.kind === "VirtualMachine");
}

// ---- the tests ----------------------------------------------------------------------------------------

test("the Dockerfile: runtime dependencies only, the app files, a non-root user, vireo as the entrypoint", () => {
  assert.ok(STAGES.length >= 2 && BUILD, "a multi-stage build with a stage named build");
  assert.equal(BUILD.from, "node:24-bookworm-slim");
  assert.ok(["node:24-bookworm-slim", "gcr.io/distroless/nodejs24-debian12"].includes(FINAL.from), `final stage FROM ${FINAL.from}`);
  assert.ok(all(BUILD, "RUN").some((r) => /\bnpm ci --omit=dev --ignore-scripts\b/.test(r)), "the build stage runs npm ci --omit=dev --ignore-scripts");
  assert.deepEqual(copies(BUILD).flatMap((c) => c.sources).sort(), ["package-lock.json", "package.json"]);
  assert.ok(!all(FINAL, "RUN").some((r) => /\bnpm\b/.test(r) && !/rm -rf/.test(r)), "the final stage installs nothing");
  assert.equal(WORKDIR, "/app");
  assert.equal(all(FINAL, "USER").at(-1), "65532:65532");
  assert.deepEqual(JSON.parse(all(FINAL, "ENTRYPOINT").at(-1)!), ["node", "/app/controller/cli/vireo.ts"]);
  const labels = all(FINAL, "LABEL").join(" ");
  for (const label of ["title", "description", "version", "revision", "licenses", "source"]) assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${label}=`));
  assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.version="${PACKAGE.version.replaceAll(".", "\\.")}"`), "the version label defaults to package.json's");

  // The build context leaves out what the image must not hold, and keeps what the COPY lines need.
  const ignored = readFileSync(join(REPO, ".dockerignore"), "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  for (const path of ["node_modules", ".git", "test", "bench", ".vireo"]) assert.ok(ignored.includes(path), `.dockerignore leaves out ${path}`);
  for (const src of [...copies(BUILD), ...copies(FINAL)].filter((c) => !c.from).flatMap((c) => c.sources)) {
    assert.ok(!ignored.includes(src.replace(/\/$/, "")), `${src} is in the build context`);
  }
});

test("vireo runs from the image's files alone: --version, then the example fleet to Running and a clean SIGTERM", async (t) => {
  const dir = tempDir("image");
  let stopChild: () => Promise<unknown> = async () => undefined;
  // The process stops before its directory goes, or its last save would write it again.
  t.after(async () => {
    await stopChild();
    dir.remove();
  });
  // Module resolution walks up from the app directory: nothing above it may supply a package.
  for (let d = dir.path; d !== dirname(d); d = dirname(d)) assert.ok(!existsSync(join(dirname(d), "node_modules")), `${dirname(d)}/node_modules would leak into the run`);
  const app = await buildImageTree(dir.path);

  // No devDependency made it in: not typescript, fast-check or the node binary package, nor any package the
  // lock file marks dev-only.
  const modules = join(app, "node_modules");
  for (const name of ["typescript", "fast-check", "node"]) assert.ok(!existsSync(join(modules, name)), `node_modules/${name} is not installed`);
  for (const name of Object.keys(PACKAGE.devDependencies)) {
    if (LOCK.packages[`node_modules/${name}`]?.dev) assert.ok(!existsSync(join(modules, name)), `devDependency ${name} is not installed`);
  }
  const installed = readdirSync(modules).flatMap((n) => (n.startsWith("@") ? readdirSync(join(modules, n)).map((m) => `${n}/${m}`) : [n])).filter((n) => !n.startsWith("."));
  assert.deepEqual(installed.filter((n) => LOCK.packages[`node_modules/${n}`]?.dev), [], "no dev-only package");
  assert.ok(existsSync(join(app, "crds")) && existsSync(join(app, "controller", "cli", "vireo.ts")) && existsSync(join(app, "package.json")));
  assert.ok(!existsSync(join(app, "test")) && !existsSync(join(app, "manifests")), "the image holds only what its COPY lines name");

  const entrypoint = JSON.parse(all(FINAL, "ENTRYPOINT").at(-1)!) as string[];
  const script = join(dir.path, "image", entrypoint[1]!);
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: "production" };
  delete env["NODE_OPTIONS"];
  const version = await run(process.execPath, [script, "--version"], app, env);
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), `vireo ${PACKAGE.version}`);

  // The example fleet, in file mode with the in-process simulator, from the image's files.
  const examples = join(dir.path, "examples");
  cpSync(join(REPO, "manifests", "examples"), examples, { recursive: true });
  // Every manifest of the directory and its subdirectories, as the file mode reads them.
  const declared = (readdirSync(examples, { recursive: true }) as string[])
    .filter((f) => /\.ya?ml$/.test(f))
    .flatMap((f) => loadAll(readFileSync(join(examples, f), "utf8")) as ({ kind?: string; spec?: { runStrategy?: string } } | null)[])
    .filter((o) => o?.kind === "VirtualMachine");
  assert.ok(declared.length > 0, "the examples declare VMs");
  const state = join(dir.path, "state");
  const child = spawn(process.execPath, [script, "run", "--manifests", examples, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", "50"], { cwd: app, env, stdio: ["ignore", "pipe", "pipe"] });
  let logs = "";
  child.stdout.on("data", (d: Buffer) => { logs += d.toString(); });
  child.stderr.on("data", (d: Buffer) => { logs += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  stopChild = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    return exited;
  };

  // Every VM reaches its desired state (Ready), which for all but the Halted ones is Running: those the
  // top-level files declare, and those the labs make (kept in the state with no manifest of their own).
  const settled = await waitForState(state, (s) => {
    const fromFiles = s.objects.filter((o) => o.source && o.object.kind === "VirtualMachine");
    const seen = vms(s);
    return fromFiles.length === declared.length && seen.length > declared.length && seen.every((vm) => vm.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
  }, WAIT_MS, () => logs);
  const running = vms(settled).filter((vm) => vm.spec.runStrategy !== "Halted" && vm.spec.runStrategy !== "Manual");
  assert.ok(running.length > 0);
  for (const vm of running) assert.equal(vm.status?.phase, "Running", `${vm.metadata.namespace}/${vm.metadata.name}`);

  child.kill("SIGTERM");
  assert.equal(await exited, 0, logs);
});
