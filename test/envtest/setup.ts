// Provides the binaries of a real Kubernetes control plane for the tests:
// etcd, kube-apiserver, kube-controller-manager and helm; and kube-scheduler,
// which the control plane does not run (ensureKubeScheduler: the cluster
// benchmark runs it beside Vireo, and its smoke test in npm test).
//
// Resolution order:
//   1. $KUBEBUILDER_ASSETS, when it holds kube-apiserver and etcd (the
//      setup-envtest layout; kube-controller-manager and helm are optional there);
//   2. the cache ${XDG_CACHE_HOME:-$HOME/.cache}/vireo/envtest/<k8s version>/,
//      when it holds all four binaries;
//   3. otherwise the missing binaries are built from the Go module proxy with
//      the wrapper modules beside this file (go.mod, helm/go.mod) into that cache.
//
// Run as a program (`npm run envtest`), it prints the directory holding the
// binaries on stdout (like `setup-envtest use -p path`); progress goes to stderr.

import { spawn } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** The binaries the cache must hold to be taken as complete. */
export const BINARIES = ["kube-apiserver", "kube-controller-manager", "etcd", "helm"] as const;
export type BinaryName = (typeof BINARIES)[number];
/** Built into the same cache by whoever asks for it; not part of a complete cache, nor of $KUBEBUILDER_ASSETS. */
type OnDemandBinary = "kube-scheduler";

interface BuildSpec {
  /** Directory of the Go module to build in (relative to this file). */
  moduleDir: string;
  /** Go package to build. */
  pkg: string;
  /** -X flags stamping the real versions in, as the projects' own builds do. */
  ldflags: () => Promise<string[]>;
}

/** -X flags of k8s.io/component-base/version, so the binaries report their real version. */
async function kubernetesLdflags(): Promise<string[]> {
  const version = await pinnedKubernetesVersion();
  const [major, minor] = version.slice(1).split(".");
  return [
    `-X k8s.io/component-base/version.gitVersion=${version}`,
    `-X k8s.io/component-base/version.gitMajor=${major}`,
    `-X k8s.io/component-base/version.gitMinor=${minor}`,
    "-X k8s.io/component-base/version.gitTreeState=clean",
  ];
}

/** The -X flags of helm's Makefile: its version, and the Kubernetes version of its client-go. */
async function helmLdflags(): Promise<string[]> {
  const gomod = await readFile(join(here, "helm", "go.mod"), "utf8");
  const helm = /^\s*(?:require\s+)?helm\.sh\/helm\/v3\s+(v\S+)/m.exec(gomod)?.[1];
  const clientGo = /^\s*k8s\.io\/client-go\s+v0\.(\d+)\./m.exec(gomod)?.[1];
  if (!helm || !clientGo) throw new Error(`cannot read helm's and client-go's versions from ${join(here, "helm", "go.mod")}`);
  const flags = [`-X helm.sh/helm/v3/internal/version.version=${helm}`, "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"];
  for (const pkg of ["helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"]) {
    flags.push(`-X ${pkg}.k8sVersionMajor=1`, `-X ${pkg}.k8sVersionMinor=${clientGo}`);
  }
  return flags;
}

const noLdflags = async (): Promise<string[]> => [];

const BUILDS: Record<BinaryName | OnDemandBinary, BuildSpec> = {
  etcd: { moduleDir: ".", pkg: "go.etcd.io/etcd/server/v3", ldflags: noLdflags },
  helm: { moduleDir: "helm", pkg: "helm.sh/helm/v3/cmd/helm", ldflags: helmLdflags },
  "kube-apiserver": { moduleDir: ".", pkg: "k8s.io/kubernetes/cmd/kube-apiserver", ldflags: kubernetesLdflags },
  "kube-controller-manager": {
    moduleDir: ".",
    pkg: "k8s.io/kubernetes/cmd/kube-controller-manager",
    ldflags: kubernetesLdflags,
  },
  "kube-scheduler": { moduleDir: ".", pkg: "k8s.io/kubernetes/cmd/kube-scheduler", ldflags: kubernetesLdflags },
};

function log(msg: string): void {
  process.stderr.write(`[envtest] ${msg}\n`);
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The k8s.io/kubernetes version pinned in ./go.mod, e.g. "v1.36.3". */
export async function pinnedKubernetesVersion(): Promise<string> {
  const gomod = await readFile(join(here, "go.mod"), "utf8");
  const m = /^\s*k8s\.io\/kubernetes\s+(v\d+\.\d+\.\d+)\s*$/m.exec(gomod);
  if (!m?.[1]) throw new Error(`cannot find the k8s.io/kubernetes requirement in ${join(here, "go.mod")}`);
  return m[1];
}

/** ${XDG_CACHE_HOME:-$HOME/.cache}/vireo/envtest/<k8s version> */
export async function cacheDir(): Promise<string> {
  const base = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return join(base, "vireo", "envtest", await pinnedKubernetesVersion());
}

async function missingIn<Name extends string>(dir: string, names: readonly Name[]): Promise<Name[]> {
  const missing: Name[] = [];
  for (const n of names) if (!(await isExecutable(join(dir, n)))) missing.push(n);
  return missing;
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): Promise<void> {
  return new Promise((resolve, reject) => {
    // go build prints nothing on stdout; keep our stdout for the path alone.
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", process.stderr, process.stderr] });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} (in ${opts.cwd}) failed: ${signal ?? `exit code ${code}`}`));
    });
  });
}

async function findGo(): Promise<string> {
  for (const dir of (process.env["PATH"] ?? "").split(":")) {
    if (dir && (await isExecutable(join(dir, "go")))) return join(dir, "go");
  }
  if (await isExecutable("/usr/local/go/bin/go")) return "/usr/local/go/bin/go";
  throw new Error("the go toolchain is needed to build the envtest binaries, and `go` is not on PATH");
}

/** Whether a process with this pid runs (EPERM: it does, as another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A lock file beside the cache dir, so that concurrent test processes do not
 * build the same binaries at once. A lock whose holder is dead is taken over.
 */
async function withLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      const fh = await open(lockPath, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const holder = Number.parseInt(await readFile(lockPath, "utf8").catch(() => ""), 10);
      if (Number.isFinite(holder) && holder > 0 && holder !== process.pid && pidAlive(holder)) {
        if (!announced) log(`waiting for process ${holder} which is building into the cache (${lockPath})`);
        announced = true;
        await new Promise((r) => setTimeout(r, 2000));
        continue;
      }
      // Stale (holder dead) or half-written: remove and retry. A racing
      // process doing the same is harmless: only one `wx` open succeeds.
      await rm(lockPath, { force: true });
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function build(dir: string, names: readonly (BinaryName | OnDemandBinary)[]): Promise<void> {
  const go = await findGo();
  const niceBin = (await isExecutable("/usr/bin/nice")) ? "/usr/bin/nice" : undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: "0" };
  for (const name of names) {
    const spec = BUILDS[name];
    const tmp = join(dir, `.${name}.tmp-${process.pid}`);
    const args = ["build", "-o", tmp];
    const ldflags = await spec.ldflags();
    if (ldflags.length > 0) args.push("-ldflags", ldflags.join(" "));
    args.push(spec.pkg);
    const started = Date.now();
    log(`building ${name} (${spec.pkg})`);
    try {
      if (niceBin) await run(niceBin, ["-n", "10", go, ...args], { cwd: join(here, spec.moduleDir), env });
      else await run(go, args, { cwd: join(here, spec.moduleDir), env });
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    // Rename only a complete binary into place: a half-built cache is never
    // taken as complete.
    await rename(tmp, join(dir, name));
    log(`built ${name} in ${Math.round((Date.now() - started) / 1000)}s`);
  }
}

/**
 * Returns a directory holding at least kube-apiserver and etcd (and, unless it
 * comes from $KUBEBUILDER_ASSETS, kube-controller-manager and helm too),
 * building them into the cache first if needed.
 */
export async function ensureControlPlaneBinaries(): Promise<string> {
  const assets = process.env["KUBEBUILDER_ASSETS"];
  if (assets) {
    const missing = await missingIn(assets, ["kube-apiserver", "etcd"]);
    if (missing.length === 0) {
      const optional = await missingIn(assets, ["kube-controller-manager", "helm"]);
      if (optional.length > 0) log(`KUBEBUILDER_ASSETS=${assets} has no ${optional.join(", ")}`);
      return assets;
    }
    log(`ignoring KUBEBUILDER_ASSETS=${assets}: it has no ${missing.join(", ")}`);
  }
  const dir = await cacheDir();
  if ((await missingIn(dir, BINARIES)).length === 0) return dir;
  await mkdir(dir, { recursive: true });
  await withLock(`${dir}.lock`, async () => {
    // Someone else may have completed the cache while we waited for the lock.
    const missing = await missingIn(dir, BINARIES);
    if (missing.length === 0) return;
    log(`building ${missing.join(", ")} into ${dir}; from scratch this takes many minutes`);
    const started = Date.now();
    await build(dir, missing);
    log(`envtest binaries ready in ${dir} (${Math.round((Date.now() - started) / 1000)}s)`);
  });
  return dir;
}

/**
 * kube-scheduler of the same Kubernetes version as the control plane, from the same cache directory, built
 * there the first time it is asked for. Built after the control plane, it compiles 6 packages of its own and
 * links: ~15 s on 2 cores; alone from a cold Go build cache, ~3.5 min.
 */
export async function ensureKubeScheduler(): Promise<string> {
  const dir = await cacheDir();
  const binary = join(dir, "kube-scheduler");
  if (await isExecutable(binary)) return binary;
  await mkdir(dir, { recursive: true });
  await withLock(`${dir}.lock`, async () => {
    if (!(await isExecutable(binary))) await build(dir, ["kube-scheduler"]);
  });
  return binary;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    const dir = await ensureControlPlaneBinaries();
    process.stdout.write(`${dir}\n`);
  } catch (e) {
    log(`error: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
